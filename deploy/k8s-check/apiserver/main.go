// kube-apiserver for `make k8s-check`: the upstream command, built from the k8s.io/kubernetes
// module at the version go.mod pins, so the chart is dry-run against a real API server without
// a cluster. The Makefile builds it into .tools/bin and sets its version with -ldflags.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as in the upstream binary

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
