package kafka

// The wire goldens of the root package's tests (testdata/kafka/wire):
// TestKafkaWireRequestsParse checks that every request comet encodes parses
// with franz-go's kmsg to the intended fields; TestKafkaWireCapture (with
// KAFKA_CAPTURE=1) rewrites the response goldens from a live kfake cluster.

import (
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const wireDir = "../../testdata/kafka/wire"

func readHex(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(wireDir, name))
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func writeHex(t *testing.T, name string, b []byte) {
	t.Helper()
	var sb strings.Builder
	for i := 0; i < len(b); i += 32 {
		sb.WriteString(hex.EncodeToString(b[i:min(i+32, len(b))]))
		sb.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(wireDir, name), []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestKafkaWireRequestsParse(t *testing.T) {
	parse := func(name string, req kmsg.Request, version int16) {
		t.Helper()
		req.SetVersion(version)
		if err := req.ReadFrom(readHex(t, name)); err != nil {
			t.Fatalf("%s: kmsg cannot parse: %v", name, err)
		}
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	parse("req-sasl-handshake-v1.hex", hs, 1)
	if hs.Mechanism != "SCRAM-SHA-512" {
		t.Errorf("handshake %+v", hs)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	parse("req-sasl-authenticate-v1.hex", au, 1)
	if string(au.SASLAuthBytes) != "n,,\x01auth=Bearer tok\x01\x01" {
		t.Errorf("authenticate %q", au.SASLAuthBytes)
	}
	md := kmsg.NewPtrMetadataRequest()
	parse("req-metadata-v8-all.hex", md, 8)
	if md.Topics != nil || md.AllowAutoTopicCreation {
		t.Errorf("metadata all %+v", md)
	}
	md = kmsg.NewPtrMetadataRequest()
	parse("req-metadata-v8-two.hex", md, 8)
	if len(md.Topics) != 2 || *md.Topics[0].Topic != "a" || *md.Topics[1].Topic != "b.c" || md.AllowAutoTopicCreation {
		t.Errorf("metadata two %+v", md)
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	parse("req-list-offsets-v5.hex", lo, 5)
	if lo.ReplicaID != -1 || len(lo.Topics) != 2 || lo.Topics[0].Topic != "t" || len(lo.Topics[0].Partitions) != 2 ||
		lo.Topics[0].Partitions[1].Timestamp != 1700000000000 || lo.Topics[0].Partitions[1].CurrentLeaderEpoch != 3 ||
		lo.Topics[1].Partitions[0].Timestamp != -2 {
		t.Errorf("list offsets %+v", lo)
	}
	fe := kmsg.NewPtrFetchRequest()
	parse("req-fetch-v11.hex", fe, 11)
	if fe.ReplicaID != -1 || fe.MaxWaitMillis != 500 || fe.MinBytes != 1 || fe.MaxBytes < 5<<20 || fe.SessionID != 0 || fe.SessionEpoch != -1 ||
		len(fe.Topics) != 2 || fe.Topics[0].Partitions[0].FetchOffset != 100 || fe.Topics[0].Partitions[0].PartitionMaxBytes < 4<<20+1024 ||
		fe.Topics[1].Topic != "u" || fe.Topics[1].Partitions[0].Partition != 2 {
		t.Errorf("fetch %+v", fe)
	}
	pr := kmsg.NewPtrProduceRequest()
	parse("req-produce-v8.hex", pr, 8)
	if pr.Acks != -1 || pr.TransactionID != nil || len(pr.Topics) != 1 || pr.Topics[0].Topic != "pub" || len(pr.Topics[0].Partitions) != 1 {
		t.Fatalf("produce %+v", pr)
	}
	var batch kmsg.RecordBatch
	if err := batch.ReadFrom(pr.Topics[0].Partitions[0].Records); err != nil {
		t.Fatal(err)
	}
	if batch.Magic != 2 || batch.NumRecords != 2 || batch.ProducerID != -1 || batch.LastOffsetDelta != 1 {
		t.Errorf("batch %+v", batch)
	}
	req := readHex(t, "req-framed-api-versions-v2.hex")
	if len(req) < 14 || int(req[3]) != len(req)-4 || req[5] != 18 || req[7] != 2 {
		t.Errorf("framed ApiVersions % x", req)
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(2)
	if err := av.ReadFrom(req[14+len("comet"):]); err != nil { // size, key, version, corr, client id
		t.Errorf("api versions body: %v", err)
	}
}

func TestKafkaWireCapture(t *testing.T) {
	if os.Getenv("KAFKA_CAPTURE") == "" {
		t.Skip("set KAFKA_CAPTURE=1 to rewrite testdata/kafka/wire/resp-*.hex from kfake")
	}
	c := cluster(t, kfake.SeedTopics(2, "golden"))
	produce(t, c.ListenAddrs(), "golden", kgo.NoCompression(), [][]byte{[]byte("v0"), []byte("v1"), []byte("v2"), []byte("v3")})
	produce(t, c.ListenAddrs(), "golden", kgo.GzipCompression(), [][]byte{[]byte("gz0"), []byte("gz1")})
	leader := c.LeaderFor("golden", 0)
	addr := c.ListenAddrs()[leader]
	// capture sends a request encoded by kmsg at version with a v1 header
	// and keeps kfake's response body exactly as sent.
	capture := func(name string, req kmsg.Request, version int16) {
		t.Helper()
		req.SetVersion(version)
		body := req.AppendTo(nil)
		frame := binary.BigEndian.AppendUint32(nil, 0)
		frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
		frame = binary.BigEndian.AppendUint16(frame, uint16(version))
		frame = binary.BigEndian.AppendUint32(frame, 42)
		frame = binary.BigEndian.AppendUint16(frame, 5)
		frame = append(frame, "comet"...)
		frame = append(frame, body...)
		binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		nc.Write(frame)
		var hdr [4]byte
		if _, err := io.ReadFull(nc, hdr[:]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(nc, resp); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if binary.BigEndian.Uint32(resp) != 42 {
			t.Fatalf("%s: correlation id", name)
		}
		writeHex(t, name, resp[4:])
	}
	capture("resp-metadata-v8.hex", kmsg.NewPtrMetadataRequest(), 8)
	capture("resp-metadata-v1.hex", kmsg.NewPtrMetadataRequest(), 1)
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "golden"
	p0 := kmsg.NewListOffsetsRequestTopicPartition()
	p0.Partition, p0.Timestamp = 0, -2
	lt.Partitions = append(lt.Partitions, p0)
	p1 := kmsg.NewListOffsetsRequestTopicPartition()
	p1.Partition, p1.Timestamp = 1, -1
	lt.Partitions = append(lt.Partitions, p1)
	lo.Topics = append(lo.Topics, lt)
	capture("resp-list-offsets-v5.hex", lo, 5)
	fe := kmsg.NewPtrFetchRequest()
	fe.MaxWaitMillis, fe.MinBytes, fe.MaxBytes, fe.SessionEpoch = 100, 1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "golden"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 0, 0, 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	fe.Topics = append(fe.Topics, ft)
	capture("resp-fetch-v11.hex", fe, 11)
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "golden"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = 0
	pp.Records = readHex(t, "req-produce-v8.hex")
	var preq kmsg.ProduceRequest
	preq.SetVersion(8)
	if err := preq.ReadFrom(pp.Records); err != nil {
		t.Fatal(err)
	}
	pp.Records = preq.Topics[0].Partitions[0].Records
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	capture("resp-produce-v8.hex", pr, 8)

	// SASL responses are built with kmsg (kfake closes the connection on a
	// wrong password instead of answering error 58).
	hs := kmsg.NewPtrSASLHandshakeResponse()
	hs.SetVersion(1)
	hs.ErrorCode = 33
	hs.SupportedMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	writeHex(t, "resp-sasl-handshake-v1.hex", hs.AppendTo(nil))
	au := kmsg.NewPtrSASLAuthenticateResponse()
	au.SetVersion(1)
	msg := "Authentication failed: Invalid username or password"
	au.ErrorCode, au.ErrorMessage, au.SessionLifetimeMillis = 58, &msg, 0
	writeHex(t, "resp-sasl-authenticate-v1-error.hex", au.AppendTo(nil))
	au = kmsg.NewPtrSASLAuthenticateResponse()
	au.SetVersion(1)
	au.SASLAuthBytes = []byte("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
	au.SessionLifetimeMillis = 3600000
	writeHex(t, "resp-sasl-authenticate-v1.hex", au.AppendTo(nil))
}
