// kafka_wire.go owns the Kafka wire format the client speaks: the primitive
// encoders and a bounds-checked decoder, request framing (header v1), and the
// request/response bodies of the non-flexible versions we use: ApiVersions
// v0-2, SaslHandshake v1, SaslAuthenticate v0-1, Metadata v1-8, ListOffsets
// v1-5, Fetch v10-11 and Produce v7-8. Every decoder works on a bounded byte
// slice, never allocates more than the remaining input could justify, and
// reports a truncated or malformed response as an error (never a panic).
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// API keys.
const (
	kafkaAPIProduce          int16 = 0
	kafkaAPIFetch            int16 = 1
	kafkaAPIListOffsets      int16 = 2
	kafkaAPIMetadata         int16 = 3
	kafkaAPISaslHandshake    int16 = 17
	kafkaAPIApiVersions      int16 = 18
	kafkaAPISaslAuthenticate int16 = 36
)

// kafkaOurVersions is the range of each API this client can encode.
var kafkaOurVersions = map[int16][2]int16{
	kafkaAPIProduce:          {7, 8},
	kafkaAPIFetch:            {10, 11},
	kafkaAPIListOffsets:      {1, 5},
	kafkaAPIMetadata:         {1, 8},
	kafkaAPISaslHandshake:    {1, 1},
	kafkaAPIApiVersions:      {0, 2},
	kafkaAPISaslAuthenticate: {0, 1},
}

// Error codes the client branches on, and their names for log lines.
const (
	kafkaErrNone                   int16 = 0
	kafkaErrOffsetOutOfRange       int16 = 1
	kafkaErrCorruptMessage         int16 = 2
	kafkaErrUnknownTopicPartition  int16 = 3
	kafkaErrLeaderNotAvailable     int16 = 5
	kafkaErrNotLeader              int16 = 6
	kafkaErrRequestTimedOut        int16 = 7
	kafkaErrMessageTooLarge        int16 = 10
	kafkaErrNotEnoughReplicas      int16 = 19
	kafkaErrNotEnoughReplicasAfter int16 = 20
	kafkaErrTopicAuthFailed        int16 = 29
	kafkaErrUnsupportedSasl        int16 = 33
	kafkaErrIllegalSaslState       int16 = 34
	kafkaErrUnsupportedVersion     int16 = 35
	kafkaErrSaslAuthFailed         int16 = 58
	kafkaErrFencedLeaderEpoch      int16 = 74
	kafkaErrUnknownLeaderEpoch     int16 = 75
	kafkaErrOffsetNotAvailable     int16 = 78
)

var kafkaErrorNames = map[int16]string{
	-1: "UNKNOWN_SERVER_ERROR", 0: "NONE", 1: "OFFSET_OUT_OF_RANGE", 2: "CORRUPT_MESSAGE",
	3: "UNKNOWN_TOPIC_OR_PARTITION", 4: "INVALID_FETCH_SIZE", 5: "LEADER_NOT_AVAILABLE",
	6: "NOT_LEADER_OR_FOLLOWER", 7: "REQUEST_TIMED_OUT", 8: "BROKER_NOT_AVAILABLE",
	9: "REPLICA_NOT_AVAILABLE", 10: "MESSAGE_TOO_LARGE", 13: "NETWORK_EXCEPTION",
	14: "COORDINATOR_LOAD_IN_PROGRESS", 15: "COORDINATOR_NOT_AVAILABLE", 17: "INVALID_TOPIC_EXCEPTION",
	18: "RECORD_LIST_TOO_LARGE", 19: "NOT_ENOUGH_REPLICAS", 20: "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
	21: "INVALID_REQUIRED_ACKS", 29: "TOPIC_AUTHORIZATION_FAILED", 31: "CLUSTER_AUTHORIZATION_FAILED",
	33: "UNSUPPORTED_SASL_MECHANISM", 34: "ILLEGAL_SASL_STATE", 35: "UNSUPPORTED_VERSION",
	42: "INVALID_REQUEST", 43: "UNSUPPORTED_FOR_MESSAGE_FORMAT", 44: "POLICY_VIOLATION",
	56: "KAFKA_STORAGE_ERROR", 58: "SASL_AUTHENTICATION_FAILED", 74: "FENCED_LEADER_EPOCH",
	75: "UNKNOWN_LEADER_EPOCH", 76: "UNSUPPORTED_COMPRESSION_TYPE", 78: "OFFSET_NOT_AVAILABLE",
	87: "INVALID_RECORD",
}

func kafkaErrName(code int16) string {
	if n, ok := kafkaErrorNames[code]; ok {
		return n
	}
	return fmt.Sprintf("ERROR_%d", code)
}

// kafkaError is a non-zero error code from a broker, with the message it
// sent when there was one.
type kafkaError struct {
	code int16
	msg  string
}

func (e *kafkaError) Error() string {
	if e.msg != "" {
		return fmt.Sprintf("%s (%d): %s", kafkaErrName(e.code), e.code, e.msg)
	}
	return fmt.Sprintf("%s (%d)", kafkaErrName(e.code), e.code)
}

func kafkaErrCode(code int16, msg string) error {
	if code == 0 {
		return nil
	}
	return &kafkaError{code: code, msg: msg}
}

// kafkaRetriable says whether a partition-level code means "refresh the
// metadata and try again" rather than a fault of the request itself.
func kafkaRetriable(code int16) bool {
	switch code {
	case kafkaErrUnknownTopicPartition, kafkaErrLeaderNotAvailable, kafkaErrNotLeader,
		kafkaErrRequestTimedOut, kafkaErrNotEnoughReplicas, kafkaErrNotEnoughReplicasAfter,
		kafkaErrFencedLeaderEpoch, kafkaErrUnknownLeaderEpoch, kafkaErrOffsetNotAvailable,
		-1, 8, 9, 13, 14, 15, 56:
		return true
	}
	return false
}

var errKafkaWireMalformed = errors.New("kafka: malformed response")

// ---- encoding ----

type kafkaWireEnc struct{ b []byte }

func (e *kafkaWireEnc) i8(v int8)   { e.b = append(e.b, byte(v)) }
func (e *kafkaWireEnc) i16(v int16) { e.b = binary.BigEndian.AppendUint16(e.b, uint16(v)) }
func (e *kafkaWireEnc) i32(v int32) { e.b = binary.BigEndian.AppendUint32(e.b, uint32(v)) }
func (e *kafkaWireEnc) i64(v int64) { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *kafkaWireEnc) boolean(v bool) {
	if v {
		e.i8(1)
	} else {
		e.i8(0)
	}
}
func (e *kafkaWireEnc) str(s string) { e.i16(int16(len(s))); e.b = append(e.b, s...) }
func (e *kafkaWireEnc) nullStr()     { e.i16(-1) }
func (e *kafkaWireEnc) bytes(p []byte) {
	if p == nil {
		e.i32(-1)
		return
	}
	e.i32(int32(len(p)))
	e.b = append(e.b, p...)
}
func (e *kafkaWireEnc) arr(n int) { e.i32(int32(n)) }

// kafkaRequest frames one request: size, header v1 (api key, version,
// correlation id, client id), body.
func kafkaRequest(api, version int16, corr int32, clientID string, body []byte) []byte {
	e := kafkaWireEnc{b: make([]byte, 4, 4+10+len(clientID)+len(body))}
	e.i16(api)
	e.i16(version)
	e.i32(corr)
	e.str(clientID)
	e.b = append(e.b, body...)
	binary.BigEndian.PutUint32(e.b, uint32(len(e.b)-4))
	return e.b
}

// ---- decoding ----

// kafkaWireDec reads big-endian fields from a response; the first failure sticks
// and every later read returns zero values.
type kafkaWireDec struct {
	b   []byte
	err error
}

func (d *kafkaWireDec) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || len(d.b) < n {
		d.err = errKafkaWireMalformed
		d.b = nil
		return false
	}
	return true
}
func (d *kafkaWireDec) i8() int8 {
	if !d.need(1) {
		return 0
	}
	v := int8(d.b[0])
	d.b = d.b[1:]
	return v
}
func (d *kafkaWireDec) i16() int16 {
	if !d.need(2) {
		return 0
	}
	v := int16(binary.BigEndian.Uint16(d.b))
	d.b = d.b[2:]
	return v
}
func (d *kafkaWireDec) i32() int32 {
	if !d.need(4) {
		return 0
	}
	v := int32(binary.BigEndian.Uint32(d.b))
	d.b = d.b[4:]
	return v
}
func (d *kafkaWireDec) i64() int64 {
	if !d.need(8) {
		return 0
	}
	v := int64(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}
func (d *kafkaWireDec) boolean() bool { return d.i8() != 0 }

// nstr reads a nullable string; null reads as "".
func (d *kafkaWireDec) nstr() string {
	n := int(d.i16())
	if n < 0 || d.err != nil {
		return ""
	}
	if !d.need(n) {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
func (d *kafkaWireDec) str() string { return d.nstr() }

// bytes reads nullable bytes, aliasing the response buffer.
func (d *kafkaWireDec) bytes() []byte {
	n := int(d.i32())
	if n < 0 || d.err != nil {
		return nil
	}
	if !d.need(n) {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// arr reads an array length; each element takes at least minElem bytes, so
// a length the remaining input cannot hold is malformed. Null reads as 0.
func (d *kafkaWireDec) arr(minElem int) int {
	n := int(d.i32())
	if d.err != nil || n < 0 {
		return 0
	}
	if minElem < 1 {
		minElem = 1
	}
	if n > len(d.b)/minElem {
		d.err = errKafkaWireMalformed
		d.b = nil
		return 0
	}
	return n
}

func (d *kafkaWireDec) done() error {
	if d.err != nil {
		return d.err
	}
	return nil
}

// ---- ApiVersions ----

type kafkaVersionRange struct{ min, max int16 }

type kafkaApiVersionsResp struct {
	errCode  int16
	versions map[int16]kafkaVersionRange
}

func encodeKafkaApiVersions(version int16) []byte { return nil }

func decodeKafkaApiVersions(b []byte, version int16) (*kafkaApiVersionsResp, error) {
	d := kafkaWireDec{b: b}
	r := &kafkaApiVersionsResp{versions: map[int16]kafkaVersionRange{}}
	r.errCode = d.i16()
	n := d.arr(6)
	for i := 0; i < n; i++ {
		k := d.i16()
		r.versions[k] = kafkaVersionRange{d.i16(), d.i16()}
	}
	if version >= 1 && r.errCode == 0 {
		d.i32() // throttle
	}
	return r, d.done()
}

// kafkaPickVersions chooses, for each API we speak, the highest version both
// sides support; an API with no common version is left out.
func kafkaPickVersions(broker map[int16]kafkaVersionRange) map[int16]int16 {
	out := map[int16]int16{}
	for api, ours := range kafkaOurVersions {
		b, ok := broker[api]
		if !ok {
			continue
		}
		v := min(ours[1], b.max)
		if v >= ours[0] && v >= b.min {
			out[api] = v
		}
	}
	return out
}

// ---- SASL ----

func encodeKafkaSaslHandshake(mechanism string) []byte {
	var e kafkaWireEnc
	e.str(mechanism)
	return e.b
}

type kafkaSaslHandshakeResp struct {
	errCode    int16
	mechanisms []string
}

func decodeKafkaSaslHandshake(b []byte) (*kafkaSaslHandshakeResp, error) {
	d := kafkaWireDec{b: b}
	r := &kafkaSaslHandshakeResp{errCode: d.i16()}
	n := d.arr(2)
	for i := 0; i < n; i++ {
		r.mechanisms = append(r.mechanisms, d.str())
	}
	return r, d.done()
}

func encodeKafkaSaslAuthenticate(auth []byte) []byte {
	var e kafkaWireEnc
	if auth == nil {
		auth = []byte{}
	}
	e.bytes(auth)
	return e.b
}

type kafkaSaslAuthResp struct {
	errCode    int16
	errMsg     string
	auth       []byte
	lifetimeMs int64
}

func decodeKafkaSaslAuthenticate(b []byte, version int16) (*kafkaSaslAuthResp, error) {
	d := kafkaWireDec{b: b}
	r := &kafkaSaslAuthResp{errCode: d.i16(), errMsg: d.nstr(), auth: d.bytes()}
	if version >= 1 {
		r.lifetimeMs = d.i64()
	}
	return r, d.done()
}

// ---- Metadata ----

// encodeKafkaMetadata asks for the named topics, or every topic when topics
// is nil; never for topic creation.
func encodeKafkaMetadata(version int16, topics []string) []byte {
	var e kafkaWireEnc
	if topics == nil {
		e.i32(-1)
	} else {
		e.arr(len(topics))
		for _, t := range topics {
			e.str(t)
		}
	}
	if version >= 4 {
		e.boolean(false) // allow_auto_topic_creation
	}
	if version >= 8 {
		e.boolean(false) // include_cluster_authorized_operations
		e.boolean(false) // include_topic_authorized_operations
	}
	return e.b
}

type kafkaBroker struct {
	id   int32
	host string
	port int32
}

type kafkaPartitionMeta struct {
	errCode   int16
	partition int32
	leader    int32
	epoch     int32
}

type kafkaTopicMeta struct {
	errCode    int16
	name       string
	internal   bool
	partitions []kafkaPartitionMeta
}

type kafkaMetadataResp struct {
	brokers    []kafkaBroker
	controller int32
	topics     []kafkaTopicMeta
}

func decodeKafkaMetadata(b []byte, version int16) (*kafkaMetadataResp, error) {
	d := kafkaWireDec{b: b}
	r := &kafkaMetadataResp{}
	if version >= 3 {
		d.i32() // throttle
	}
	n := d.arr(10)
	for i := 0; i < n; i++ {
		br := kafkaBroker{id: d.i32(), host: d.str(), port: d.i32()}
		if version >= 1 {
			d.nstr() // rack
		}
		r.brokers = append(r.brokers, br)
	}
	if version >= 2 {
		d.nstr() // cluster id
	}
	if version >= 1 {
		r.controller = d.i32()
	}
	n = d.arr(8)
	for i := 0; i < n; i++ {
		t := kafkaTopicMeta{errCode: d.i16(), name: d.str()}
		if version >= 1 {
			t.internal = d.boolean()
		}
		np := d.arr(18)
		for j := 0; j < np; j++ {
			p := kafkaPartitionMeta{errCode: d.i16(), partition: d.i32(), leader: d.i32(), epoch: -1}
			if version >= 7 {
				p.epoch = d.i32()
			}
			for k, nk := 0, 2+kafkaBoolInt(version >= 5); k < nk; k++ { // replicas, isr, offline
				m := d.arr(4)
				for x := 0; x < m; x++ {
					d.i32()
				}
			}
			t.partitions = append(t.partitions, p)
		}
		if version >= 8 {
			d.i32() // topic authorized operations
		}
		r.topics = append(r.topics, t)
	}
	if version >= 8 {
		d.i32() // cluster authorized operations
	}
	return r, d.done()
}

func kafkaBoolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---- ListOffsets ----

// Special ListOffsets timestamps.
const (
	kafkaLatest   int64 = -1
	kafkaEarliest int64 = -2
)

type kafkaListOffsetsReq struct {
	topic     string
	partition int32
	epoch     int32 // -1 when unknown
	timestamp int64
}

func encodeKafkaListOffsets(version int16, reqs []kafkaListOffsetsReq) []byte {
	var e kafkaWireEnc
	e.i32(-1) // replica id
	if version >= 2 {
		e.i8(0) // read uncommitted
	}
	groups := kafkaGroupByTopic(len(reqs), func(i int) string { return reqs[i].topic })
	e.arr(len(groups))
	for _, g := range groups {
		e.str(reqs[g[0]].topic)
		e.arr(len(g))
		for _, i := range g {
			e.i32(reqs[i].partition)
			if version >= 4 {
				e.i32(reqs[i].epoch)
			}
			e.i64(reqs[i].timestamp)
		}
	}
	return e.b
}

// kafkaGroupByTopic groups indices by topic, topics in first-seen order.
func kafkaGroupByTopic(n int, topic func(int) string) [][]int {
	var groups [][]int
	at := map[string]int{}
	for i := 0; i < n; i++ {
		t := topic(i)
		g, ok := at[t]
		if !ok {
			g = len(groups)
			at[t] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

type kafkaListOffsetsPart struct {
	topic     string
	partition int32
	errCode   int16
	timestamp int64
	offset    int64
}

func decodeKafkaListOffsets(b []byte, version int16) ([]kafkaListOffsetsPart, error) {
	d := kafkaWireDec{b: b}
	if version >= 2 {
		d.i32()
	}
	var out []kafkaListOffsetsPart
	n := d.arr(6)
	for i := 0; i < n; i++ {
		t := d.str()
		np := d.arr(22)
		for j := 0; j < np; j++ {
			p := kafkaListOffsetsPart{topic: t, partition: d.i32(), errCode: d.i16(), timestamp: d.i64(), offset: d.i64()}
			if version >= 4 {
				d.i32() // leader epoch
			}
			out = append(out, p)
		}
	}
	return out, d.done()
}

// ---- Fetch ----

// Fetch sizes: a partition may return one 4 MiB message plus its batch
// overhead, a whole response stays well under the connection's cap.
const (
	kafkaFetchMaxWaitMs       = 500
	kafkaFetchPartitionMax    = 5 << 20
	kafkaFetchMaxBytes        = 8 << 20
	kafkaMaxResponse          = 16 << 20
	kafkaFetchMinBytes        = 1
	kafkaDefaultMaxValueBytes = 4<<20 + 64<<10
)

type kafkaFetchReq struct {
	topic     string
	partition int32
	epoch     int32
	offset    int64
}

func encodeKafkaFetch(version int16, maxWaitMs int32, reqs []kafkaFetchReq) []byte {
	var e kafkaWireEnc
	e.i32(-1) // replica id
	e.i32(maxWaitMs)
	e.i32(kafkaFetchMinBytes)
	e.i32(kafkaFetchMaxBytes)
	e.i8(0)   // isolation: read uncommitted
	e.i32(0)  // session id: none
	e.i32(-1) // session epoch: sessionless full fetch
	groups := kafkaGroupByTopic(len(reqs), func(i int) string { return reqs[i].topic })
	e.arr(len(groups))
	for _, g := range groups {
		e.str(reqs[g[0]].topic)
		e.arr(len(g))
		for _, i := range g {
			e.i32(reqs[i].partition)
			e.i32(reqs[i].epoch) // current leader epoch (v9+)
			e.i64(reqs[i].offset)
			e.i64(-1) // log start offset (followers only)
			e.i32(kafkaFetchPartitionMax)
		}
	}
	e.arr(0) // forgotten topics
	if version >= 11 {
		e.str("") // rack id
	}
	return e.b
}

type kafkaFetchPart struct {
	topic          string
	partition      int32
	errCode        int16
	highWatermark  int64
	logStartOffset int64
	records        []byte
}

type kafkaFetchResp struct {
	errCode int16
	parts   []kafkaFetchPart
}

func decodeKafkaFetch(b []byte, version int16) (*kafkaFetchResp, error) {
	d := kafkaWireDec{b: b}
	r := &kafkaFetchResp{}
	d.i32() // throttle
	r.errCode = d.i16()
	d.i32() // session id
	n := d.arr(6)
	for i := 0; i < n; i++ {
		t := d.str()
		np := d.arr(38)
		for j := 0; j < np; j++ {
			p := kafkaFetchPart{topic: t, partition: d.i32(), errCode: d.i16(), highWatermark: d.i64()}
			d.i64() // last stable offset
			p.logStartOffset = d.i64()
			na := d.arr(16)
			for k := 0; k < na; k++ {
				d.i64()
				d.i64()
			}
			if version >= 11 {
				d.i32() // preferred read replica
			}
			p.records = d.bytes()
			r.parts = append(r.parts, p)
		}
	}
	return r, d.done()
}

// ---- Produce ----

type kafkaProduceReq struct {
	topic     string
	partition int32
	records   []byte // one record batch
}

func encodeKafkaProduce(version int16, timeoutMs int32, reqs []kafkaProduceReq) []byte {
	var e kafkaWireEnc
	e.nullStr() // transactional id
	e.i16(-1)   // acks: all in-sync replicas
	e.i32(timeoutMs)
	groups := kafkaGroupByTopic(len(reqs), func(i int) string { return reqs[i].topic })
	e.arr(len(groups))
	for _, g := range groups {
		e.str(reqs[g[0]].topic)
		e.arr(len(g))
		for _, i := range g {
			e.i32(reqs[i].partition)
			e.bytes(reqs[i].records)
		}
	}
	return e.b
}

type kafkaProducePart struct {
	topic      string
	partition  int32
	errCode    int16
	baseOffset int64
	errMsg     string
}

func decodeKafkaProduce(b []byte, version int16) ([]kafkaProducePart, error) {
	d := kafkaWireDec{b: b}
	var out []kafkaProducePart
	n := d.arr(6)
	for i := 0; i < n; i++ {
		t := d.str()
		np := d.arr(30)
		for j := 0; j < np; j++ {
			p := kafkaProducePart{topic: t, partition: d.i32(), errCode: d.i16(), baseOffset: d.i64()}
			d.i64() // log append time
			d.i64() // log start offset
			if version >= 8 {
				ne := d.arr(6)
				for k := 0; k < ne; k++ {
					d.i32()
					d.nstr()
				}
				p.errMsg = d.nstr()
			}
			out = append(out, p)
		}
	}
	d.i32() // throttle
	return out, d.done()
}

// kafkaClampMs turns a duration in ms to int32 for the wire.
func kafkaClampMs(ms int64) int32 {
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	if ms < 0 {
		return 0
	}
	return int32(ms)
}
