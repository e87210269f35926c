// The node's CoreDNS, with only the plugins kubevox uses: those of the Corefile in
// hack/node/coredns.yaml, and bind (the host test, tests/node/test_coredns.py, listens on
// 127.0.0.1 only). `go install github.com/coredns/coredns` compiles every plugin CoreDNS ships,
// with their cloud SDKs (route53, azure, clouddns, etcd, nomad, ...): nearly twice the CPU time
// of this build, and 233 MB of modules to download instead of 43. tests/node/test_coredns.py
// keeps this list and the Corefile equal.
//
// This is CoreDNS's own coredns.go with its plugin list narrowed, as CoreDNS documents for a
// build with chosen plugins. CoreDNS is Copyright The CoreDNS Authors, Apache License 2.0
// (https://github.com/coredns/coredns/blob/master/LICENSE).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/metrics" // the prometheus directive
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

// directives in the order they run, which is CoreDNS's (core/dnsserver/zdirectives.go of the
// version in go.mod) with the plugins not built here left out.
var directives = []string{
	"bind",
	"ready",
	"health",
	"prometheus",
	"errors",
	"cache",
	"template",
	"kubernetes",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
