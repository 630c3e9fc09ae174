// kafka_bridge_config.go owns how the broker's command line carries the Kafka
// options of contract section 8: they are declared once, by kafkaAddFlags
// (kafka_config.go), on the broker's flag set, with a line of --help each;
// and they are resolved and checked at parse time (GCN preset, defaults,
// combinations), so a bad combination is a usage error naming the option
// before anything starts. Secrets come from files only (--kafka-password-file,
// --kafka-client-secret-file, --gcn-client-secret-file); the files are read
// when the broker starts and again on SIGHUP, never at parse time.
package main

import (
	"flag"
	"strings"
)

// kafkaOptionArgs are the --help placeholders of the Kafka options whose
// usage text names none.
var kafkaOptionArgs = map[string]string{
	"kafka-security":           "PROTOCOL",
	"kafka-sasl-mechanism":     "MECHANISM",
	"kafka-username":           "USER",
	"kafka-password-file":      "FILE",
	"kafka-oauth-token-url":    "URL",
	"kafka-client-id":          "ID",
	"kafka-client-secret-file": "FILE",
	"kafka-ca":                 "FILE",
	"kafka-start":              "WHERE",
	"kafka-refresh":            "DURATION",
	"gcn-client-id":            "ID",
	"gcn-client-secret-file":   "FILE",
	"gcn-domain":               "DOMAIN",
}

// kafkaAddOptions declares the Kafka options on the broker's option set
// (values land in c) and adds their --help lines, in kafkaAddFlags' order.
func kafkaAddOptions(o *optionSet, c *kafkaConfig) {
	before := map[string]bool{}
	o.fs.VisitAll(func(f *flag.Flag) { before[f.Name] = true })
	kafkaAddFlags(o.fs, c)
	var added []*flag.Flag
	o.fs.VisitAll(func(f *flag.Flag) {
		if !before[f.Name] {
			added = append(added, f)
		}
	})
	// VisitAll goes in name order; --help keeps kafkaAddFlags' order,
	// which follows the contract's table.
	order := []string{"kafka-bootstrap", "kafka-topic", "kafka-security", "kafka-sasl-mechanism", "kafka-username",
		"kafka-password-file", "kafka-oauth-token-url", "kafka-client-id", "kafka-client-secret-file", "kafka-ca",
		"kafka-start", "kafka-refresh", "kafka-publish", "gcn-client-id", "gcn-client-secret-file", "gcn-domain"}
	rank := map[string]int{}
	for i, n := range order {
		rank[n] = i + 1
	}
	for i := 1; i < len(added); i++ { // insertion sort: a handful of flags
		for j := i; j > 0 && kafkaOptionRank(rank, added[j].Name) < kafkaOptionRank(rank, added[j-1].Name); j-- {
			added[j], added[j-1] = added[j-1], added[j]
		}
	}
	for _, f := range added {
		arg, usage := flag.UnquoteUsage(f)
		if a, ok := kafkaOptionArgs[f.Name]; ok {
			arg = a
		} else if arg == "value" || arg == "string" || arg == "" {
			arg = "VALUE"
		}
		o.help = append(o.help, option{[]string{f.Name}, strings.ToUpper(arg), usage})
	}
}

func kafkaOptionRank(rank map[string]int, name string) int {
	if r, ok := rank[name]; ok {
		return r
	}
	return len(rank) + 1
}

// kafkaOptionsGiven says whether any Kafka option was given.
func (c *kafkaConfig) optionsGiven() bool {
	return len(c.Bootstrap) > 0 || len(c.Topics) > 0 || c.Security != "" || c.Mechanism != "" ||
		c.Username != "" || c.PasswordFile != "" || c.TokenURL != "" || c.ClientID != "" ||
		c.ClientSecretFile != "" || c.CAFile != "" || c.Start != "" || c.Refresh != 0 ||
		c.PublishTopic != "" || c.GCNClientID != "" || c.GCNClientSecretFile != "" || c.GCNDomain != ""
}

// kafkaResolveOptions resolves the Kafka options of one parse (the GCN
// preset, defaults, checks) when any was given; its error is a usage error
// naming the option.
func kafkaResolveOptions(c *kafkaConfig) error {
	if !c.optionsGiven() {
		return nil
	}
	if err := c.resolve(); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "--") && !strings.HasPrefix(msg, "kafka") {
			msg = "kafka: " + msg
		}
		return usagef("%s", msg)
	}
	return nil
}

// consumes says whether the (resolved) options ask for a Kafka consumer,
// which is a role of its own, like --remote.
func (c *kafkaConfig) consumes() bool { return len(c.Topics) > 0 }
