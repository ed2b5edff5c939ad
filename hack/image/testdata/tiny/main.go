// Command tiny stands in for Pennant's binaries in hack/image's tests: it is quick to
// cross-compile for every platform, and prints its version (stamped like cmd/pennant's,
// -X main.version=...) whatever its arguments.
package main

import "os"

var version = "unset"

func main() {
	_, _ = os.Stdout.WriteString(version + "\n")
}
