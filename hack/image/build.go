package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// target is one image: a main package and where its image is published.
type target struct {
	name        string   // binary and archive name: bin/<name>-image.tar, /usr/local/bin/<name>
	pkg         string   // main package, relative to the module root
	repository  string   // repository under the registry, e.g. "pennant" for ghcr.io/pennant/pennant
	title       string   // org.opencontainers.image.title
	description string   // org.opencontainers.image.description
	links       []string // further paths in the image that are symbolic links to the binary
}

// targets are the images `make image` builds. The names are the ones config/manager and
// config/loadtester deploy (ghcr.io/pennant/pennant, ghcr.io/pennant/loadtester).
var targets = []target{
	{name: "pennant", pkg: "./cmd/pennant", repository: "pennant", title: "Pennant",
		description: "Progressive delivery controller for Kubernetes, a drop-in replacement for Flagger"},
	// Started as curl, sh or watch, the load tester is a small curl, a POSIX shell and watch:
	// `kubectl exec deploy/flagger-loadtester -- curl ... localhost:8080/gate/open` and `kubectl exec
	// -it ... sh` then `watch curl ...` work in an image without those packages.
	{name: "loadtester", pkg: "./cmd/loadtester", repository: "loadtester", title: "Pennant load tester",
		description: "Load tester for canary webhooks, a drop-in replacement for flagger-loadtester",
		links:       []string{"/usr/bin/curl", "/bin/sh", "/usr/bin/watch"}},
}

const (
	// defaultRegistry holds the published images; -registry changes it (a fork's own).
	defaultRegistry = "ghcr.io/pennant"
	// source is org.opencontainers.image.source.
	source = "https://github.com/pennant/pennant"
	// license is org.opencontainers.image.licenses: the project's LICENSE.
	license = "Apache-2.0"
	// nonRootUser is distroless' "nonroot" UID:GID; numeric, so the image needs no /etc/passwd
	// and Kubernetes' runAsNonRoot can verify it.
	nonRootUser = "65532:65532"
	// binDir is where the binary lands in the image; the entrypoint is binDir/<name>.
	binDir = "/usr/local/bin"
	// searchPath is the image's PATH: the binary and its links (e.g. /usr/bin/curl) run by name,
	// from `kubectl exec` and from the load tester's tasks alike.
	searchPath = "/usr/local/bin:/usr/bin:/bin"
	// caBundlePath is where Go's crypto/x509 looks first on Linux, in the image and on Debian.
	caBundlePath = "/etc/ssl/certs/ca-certificates.crt"
)

// buildOptions are what every image of one build shares.
type buildOptions struct {
	moduleDir string        // the module root: where `go build` runs
	version   string        // stamped into the binary (-X main.version) and the labels
	revision  string        // the commit, for org.opencontainers.image.revision
	created   time.Time     // the image's creation time and every file's mtime: reproducible
	platforms []v1.Platform // linux/amd64, linux/arm64, ...
	caBundle  string        // the CA bundle on the build machine, copied to caBundlePath
	workDir   string        // scratch space for the binaries
}

// binaryPath is the entrypoint of t's image.
func (t target) binaryPath() string { return path.Join(binDir, t.name) }

// buildIndex builds t for every platform and returns the multi-platform image index.
func buildIndex(ctx context.Context, o buildOptions, t target) (v1.ImageIndex, error) {
	caBundle, err := os.ReadFile(o.caBundle)
	if err != nil {
		return nil, fmt.Errorf("reading the CA bundle (Debian: apt-get install ca-certificates): %w", err)
	}
	index := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	index = mutate.Annotations(index, labels(o, t)).(v1.ImageIndex)
	for _, p := range o.platforms {
		binary, err := buildBinary(ctx, o, t, p)
		if err != nil {
			return nil, err
		}
		img, err := buildImage(o, t, p, binary, caBundle)
		if err != nil {
			return nil, fmt.Errorf("%s image for %s: %w", t.name, p, err)
		}
		platform := p
		index = mutate.AppendManifests(index, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &platform},
		})
	}
	return index, nil
}

// buildBinary cross-compiles t's static binary for p and returns its path.
func buildBinary(ctx context.Context, o buildOptions, t target, p v1.Platform) (string, error) {
	out := filepath.Join(o.workDir, fmt.Sprintf("%s-%s-%s", t.name, p.OS, p.Architecture))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		// -s -w: no symbol table or DWARF; stack traces and pprof still work (pclntab stays).
		"-ldflags", "-s -w -X main.version="+o.version,
		"-o", out, t.pkg)
	cmd.Dir = o.moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Architecture == "arm" && p.Variant != "" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s for %s: %w\n%s", t.pkg, p, err, output)
	}
	return out, nil
}

// buildImage is the empty base plus one layer (the binary and the CA bundle), run as a non-root
// user with the binary as its entrypoint.
func buildImage(o buildOptions, t target, p v1.Platform, binary string, caBundle []byte) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	files := []file{
		{name: "tmp/", mode: 0o1777},
		{name: strings.TrimPrefix(caBundlePath, "/"), mode: 0o644, data: caBundle},
		{name: strings.TrimPrefix(t.binaryPath(), "/"), mode: 0o755, data: bin},
	}
	for _, link := range t.links {
		// Relative, so that the link also resolves in an unpacked root that is not "/".
		target, err := filepath.Rel(path.Dir(link), t.binaryPath())
		if err != nil {
			return nil, err
		}
		files = append(files, file{name: strings.TrimPrefix(link, "/"), mode: 0o777, link: filepath.ToSlash(target)})
	}
	layerTar, err := layerTar(o.created, files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.DefaultCompression),
		tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: o.created},
		CreatedBy: "hack/image: " + t.pkg + " and the build machine's " + caBundlePath,
		Comment:   caBundleOrigin(),
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = v1.Time{Time: o.created}
	cfg.Config = v1.Config{
		User:       nonRootUser,
		Entrypoint: []string{t.binaryPath()},
		WorkingDir: "/",
		Env:        []string{"PATH=" + searchPath},
		Labels:     labels(o, t),
	}
	return mutate.ConfigFile(img, cfg)
}

// labels are the OCI annotations of an image (config labels) and of its index.
func labels(o buildOptions, t target) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       t.title,
		"org.opencontainers.image.description": t.description,
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.revision":    o.revision,
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.licenses":    license,
		"org.opencontainers.image.created":     o.created.UTC().Format(time.RFC3339),
	}
}

// caBundleOrigin names the Debian package the CA bundle came from, when dpkg knows it, so an
// image's history tells which certificates it trusts.
func caBundleOrigin() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Package} ${Version}", "ca-certificates").Output()
	if err != nil || len(out) == 0 {
		return ""
	}
	return caBundlePath + " from Debian's " + string(out)
}

// file is one entry of a layer: a directory when its name ends in "/", a symbolic link when it
// has a link target, else a regular file holding data.
type file struct {
	name string
	mode int64
	data []byte
	link string
}

// layerTar writes files, and the directories leading to them, as a reproducible tar: fixed
// times, root-owned, in the order given.
func layerTar(mtime time.Time, files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	written := map[string]bool{}
	writeDir := func(name string, mode int64) error {
		if written[name] {
			return nil
		}
		written[name] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mtime})
	}
	for _, f := range files {
		parents := strings.Split(strings.TrimSuffix(f.name, "/"), "/")
		for i := 1; i < len(parents); i++ {
			if err := writeDir(strings.Join(parents[:i], "/")+"/", 0o755); err != nil {
				return nil, err
			}
		}
		if strings.HasSuffix(f.name, "/") {
			if err := writeDir(f.name, f.mode); err != nil {
				return nil, err
			}
			continue
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime}
		if f.link != "" {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, f.link, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
