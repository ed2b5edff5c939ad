package main

import (
	"flag"
	"strings"
	"testing"
)

func TestCheckFlags(t *testing.T) {
	cases := []struct {
		args    []string
		wantErr string // empty: accepted
	}{
		{[]string{"-mesh-provider=istio", "-threadiness=4"}, ""},
		{[]string{"-mesh-provider=smi:v1alpha2:linkerd"}, ""},
		{[]string{"-mesh-provider=gatewayapi:v1"}, ""},
		{[]string{"-mesh-provider=istoi"}, "-mesh-provider"},
		{[]string{"-threadiness=0"}, "-threadiness"},
		{[]string{"-kubeconfig-qps=0"}, "-kubeconfig-qps"},
		{[]string{"-watch-label-selector=sharding.fluxcd.io/key=shard1"}, ""},
		{[]string{"-watch-label-selector=!sharding.fluxcd.io/key"}, ""},
		{[]string{"-watch-label-selector=sharding.fluxcd.io/key in shard1"}, "-watch-label-selector"},
		{[]string{"-max-concurrent-releases=20"}, ""},
		{[]string{"-max-concurrent-releases=-1"}, "-max-concurrent-releases"},
	}
	for _, c := range cases {
		o, err := parseFlags(flag.NewFlagSet("test", flag.ContinueOnError), append(c.args, "-check-flags"))
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if !o.checkFlags {
			t.Fatalf("%v: -check-flags not parsed", c.args)
		}
		err = checkFlags(o)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%v refused: %v", c.args, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.wantErr)
		}
	}
}
