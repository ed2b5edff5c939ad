// Command image builds Pennant's container images without a Docker daemon (`make image`).
//
// For each target (the controller, cmd/pennant, and the load tester, cmd/loadtester) it
// cross-compiles a static binary per platform (CGO_ENABLED=0, -trimpath, the version stamped with
// -X main.version), puts it with the build machine's CA bundle into one layer on an empty base,
// and writes a multi-platform OCI image index, packed as an OCI image layout tar, to
// <out>/<name>-image.tar. The images run as UID 65532 with the binary as entrypoint and carry the
// org.opencontainers.image.* labels. Their creation time is SOURCE_DATE_EPOCH, or else the
// commit's time, so that the same commit builds the same digests.
//
// With -push it also uploads each index to <registry>/<name>:<version> (and -also-tag tags)
// with the credentials of `docker login`/credential helpers; see CONTRIBUTING.md.
//
// Usage, from the module root:
//
//	go run ./hack/image [-version v0.1.0] [-targets pennant] [-platforms linux/amd64,linux/arm64] [-out bin]
//	go run ./hack/image -version v0.1.0 -push [-registry ghcr.io/pennant] [-also-tag latest]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// config is the command line.
type config struct {
	targets   string
	platforms string
	version   string
	revision  string
	out       string
	caBundle  string
	registry  string
	push      bool
	alsoTags  string
}

func main() {
	var c config
	fs := flag.NewFlagSet("image", flag.ExitOnError)
	fs.StringVar(&c.targets, "targets", strings.Join(targetNames(), ","), "comma-separated images to build")
	fs.StringVar(&c.platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated os/arch[/variant] of the image index")
	fs.StringVar(&c.version, "version", "", "version stamped into the binaries and labels (default: git describe --tags --always --dirty)")
	fs.StringVar(&c.revision, "revision", "", "commit for the revision label (default: git rev-parse HEAD)")
	fs.StringVar(&c.out, "out", "bin", "directory of the <name>-image.tar archives")
	fs.StringVar(&c.caBundle, "ca-bundle", caBundlePath, "CA bundle copied into the images (Debian's ca-certificates)")
	fs.StringVar(&c.registry, "registry", defaultRegistry, "registry and namespace of the images: <registry>/<name>:<version>")
	fs.BoolVar(&c.push, "push", false, "also push each image index to <registry>/<name>:<version>")
	fs.StringVar(&c.alsoTags, "also-tag", "", "with -push: comma-separated further tags to push, e.g. latest")
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	o, chosen, err := resolve(ctx, c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	o.workDir, err = os.MkdirTemp(c.out, ".image-build-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(o.workDir) }()

	for _, t := range chosen {
		index, err := buildIndex(ctx, o, t)
		if err != nil {
			return err
		}
		ref := imageRef(c.registry, t, o.version)
		archive := filepath.Join(c.out, t.name+"-image.tar")
		if err := writeArchive(index, ref, o.created, archive); err != nil {
			return fmt.Errorf("writing %s: %w", archive, err)
		}
		digest, err := index.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%s %s@%s\n", archive, ref, digest)
		if c.push {
			for _, r := range append([]string{ref}, extraRefs(c, t)...) {
				if err := push(ctx, index, r); err != nil {
					return err
				}
				fmt.Printf("pushed %s@%s\n", r, digest)
			}
		}
	}
	return nil
}

// resolve turns the command line into build options, asking git for what was not given.
func resolve(ctx context.Context, c config) (buildOptions, []target, error) {
	o := buildOptions{version: c.version, revision: c.revision, caBundle: c.caBundle}
	if c.alsoTags != "" && !c.push {
		return o, nil, errors.New("-also-tag without -push: the archive is named by -version alone")
	}
	chosen, err := selectTargets(c.targets)
	if err != nil {
		return o, nil, err
	}
	if o.platforms, err = parsePlatforms(c.platforms); err != nil {
		return o, nil, err
	}
	if o.moduleDir, err = commandOutput(ctx, "go", "env", "GOMOD"); err != nil || o.moduleDir == "" || o.moduleDir == os.DevNull {
		return o, nil, fmt.Errorf("run from within Pennant's module (go env GOMOD: %q, %v)", o.moduleDir, err)
	}
	o.moduleDir = filepath.Dir(o.moduleDir)
	if o.version == "" {
		if o.version, err = git(ctx, o.moduleDir, "describe", "--tags", "--always", "--dirty"); err != nil {
			return o, nil, fmt.Errorf("no -version given and git cannot tell it: %w", err)
		}
	}
	if o.revision == "" {
		if o.revision, err = git(ctx, o.moduleDir, "rev-parse", "HEAD"); err != nil {
			return o, nil, fmt.Errorf("no -revision given and git cannot tell it: %w", err)
		}
	}
	o.created, err = creationTime(ctx, o.moduleDir)
	return o, chosen, err
}

// creationTime is SOURCE_DATE_EPOCH (the reproducible-builds convention) or the commit's time.
func creationTime(ctx context.Context, dir string) (time.Time, error) {
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		var err error
		if epoch, err = git(ctx, dir, "log", "-1", "--format=%ct", "HEAD"); err != nil {
			return time.Time{}, fmt.Errorf("no SOURCE_DATE_EPOCH and git cannot tell the commit time: %w", err)
		}
	}
	seconds, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: not a number of seconds", epoch)
	}
	return time.Unix(seconds, 0).UTC(), nil
}

func targetNames() []string {
	names := make([]string, 0, len(targets))
	for _, t := range targets {
		names = append(names, t.name)
	}
	return names
}

func selectTargets(list string) ([]target, error) {
	var chosen []target
	for _, n := range splitList(list) {
		found := false
		for _, t := range targets {
			if t.name == n {
				chosen, found = append(chosen, t), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown target %q (known: %s)", n, strings.Join(targetNames(), ", "))
		}
	}
	if len(chosen) == 0 {
		return nil, errors.New("no target chosen")
	}
	return chosen, nil
}

func parsePlatforms(list string) ([]v1.Platform, error) {
	var platforms []v1.Platform
	for _, s := range splitList(list) {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		if p.OS != "linux" || p.Architecture == "" {
			return nil, fmt.Errorf("platform %q: want linux/<arch>[/<variant>]", s)
		}
		platforms = append(platforms, *p)
	}
	if len(platforms) == 0 {
		return nil, errors.New("no platform chosen")
	}
	return platforms, nil
}

func extraRefs(c config, t target) []string {
	var refs []string
	for _, tag := range splitList(c.alsoTags) {
		refs = append(refs, imageRef(c.registry, t, tag))
	}
	return refs
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	return commandOutput(ctx, "git", append([]string{"-C", dir}, args...)...)
}

// commandOutput runs a command and returns its trimmed standard output.
func commandOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(exit.Stderr)))
	}
	return strings.TrimSpace(string(out)), err
}
