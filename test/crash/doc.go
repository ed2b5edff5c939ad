// Package crash holds Pennant's crash campaign and outage tests (run by `make e2e`, hack/e2e.sh).
//
// The real pennant binary talks to the kube-apiserver through a loopback reverse proxy that counts
// its mutating requests and can kill it right after the N-th one was applied by the apiserver,
// before the response reaches pennant: the effect happened, the controller never learned of it.
package crash
