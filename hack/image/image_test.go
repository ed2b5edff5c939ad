package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The tests build images in-process with the same functions as `make image`, then read the
// archive back with go-containerregistry's OCI layout reader, as a registry client would.

const (
	testVersion  = "v9.8.7-test+0a1b2c" // "+" is valid in a version but not in a tag
	testTag      = "v9.8.7-test-0a1b2c"
	testRevision = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
)

var testCreated = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// TestEveryImage builds each image `make image` builds, for this machine's architecture, and
// checks what a cluster relies on: the name the manifests in config/ deploy, platform, non-root
// user, entrypoint, labels, the files of the layer, and that the binary runs from the unpacked
// image and reports the stamped version.
func TestEveryImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the images' binaries are linux ones; run on linux to execute them")
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			root := checkImage(t, tg)
			if extra := extraImageChecks[tg.name]; extra != nil {
				extra(t, root)
			}
		})
	}
}

// deployedBy are the manifests that run each image, which must name it as hack/image does.
var deployedBy = map[string]string{
	"pennant":    "config/manager/manager.yaml",
	"loadtester": "config/loadtester/deployment.yaml",
}

// extraImageChecks are checks of one image's own, given the root it was unpacked to.
var extraImageChecks = map[string]func(t *testing.T, root string){
	"loadtester": checkCurlLink,
}

// checkImage builds tg's image, checks it and returns the directory its layer was unpacked to.
func checkImage(t *testing.T, tg target) string {
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	index, ref := buildAndReadBack(t, testOptions(t, platform), tg)

	if want := defaultRegistry + "/" + tg.repository + ":" + testTag; ref != want {
		t.Errorf("archive names the image %q, want %q", ref, want)
	}
	manifests, ok := deployedBy[tg.name]
	if !ok {
		t.Errorf("no manifest in config/ known to deploy %s: add it to deployedBy", tg.name)
	} else if data, err := os.ReadFile(filepath.Join(moduleRoot(t), manifests)); err != nil {
		t.Error(err)
	} else if want := "image: " + defaultRegistry + "/" + tg.repository + ":"; !strings.Contains(string(data), want) {
		t.Errorf("%s does not deploy the image as %q", manifests, want+"<tag>")
	}

	images := imagesByPlatform(t, index)
	img := images[platform.String()]
	if len(images) != 1 || img == nil {
		t.Fatalf("index lists %v, want %s alone", keys(images), platform)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("User %q, want the non-root 65532:65532", cfg.Config.User)
	}
	entrypoint := "/usr/local/bin/" + tg.name
	if got := strings.Join(cfg.Config.Entrypoint, " "); got != entrypoint {
		t.Errorf("Entrypoint %q, want %s", got, entrypoint)
	}
	if !cfg.Created.Time.Equal(testCreated) {
		t.Errorf("Created %s, want %s (reproducible)", cfg.Created.Time, testCreated)
	}
	checkLabels(t, "image config", cfg.Config.Labels, tg.title)

	files := layerFiles(t, img)
	bin := files[strings.TrimPrefix(entrypoint, "/")]
	if bin == nil || bin.hdr.Mode != 0o755 || bin.hdr.Typeflag != tar.TypeReg {
		t.Fatalf("layer has no executable %s (mode 0755): %+v", entrypoint, bin)
	}
	caBundle, err := os.ReadFile(caBundlePath)
	if err != nil {
		t.Fatal(err)
	}
	if ca := files["etc/ssl/certs/ca-certificates.crt"]; ca == nil || ca.hdr.Mode != 0o644 || !bytes.Equal(ca.data, caBundle) {
		t.Errorf("layer's etc/ssl/certs/ca-certificates.crt is missing, not 0644 or not the build machine's bundle")
	}
	if tmp := files["tmp/"]; tmp == nil || tmp.hdr.Mode != 0o1777 {
		t.Errorf("layer's tmp/ is missing or not 1777: %+v", tmp)
	}
	for _, link := range tg.links {
		f := files[strings.TrimPrefix(link, "/")]
		if f == nil || f.hdr.Typeflag != tar.TypeSymlink || path.Join(path.Dir(link), f.hdr.Linkname) != entrypoint {
			t.Errorf("layer's %s is not a link to %s: %+v", link, entrypoint, f)
		}
		if !onPath(cfg.Config.Env, path.Dir(link)) {
			t.Errorf("%s is not on the image's PATH (%v): it would not run by name", path.Dir(link), cfg.Config.Env)
		}
	}

	// The binaries use net: with cgo they would link libc dynamically.
	if machine, ok := wantMachine[platform.String()]; ok {
		checkStaticELF(t, platform.String(), bin.data, machine)
	}
	root := unpack(t, files)
	if out := runIn(t, root, entrypoint, "-version"); out != testVersion {
		t.Errorf("%s -version printed %q, want the stamped %q", tg.name, out, testVersion)
	}
	return root
}

// checkCurlLink runs the load tester's image's curl, as `kubectl exec ... -- curl` would, against
// a server on 127.0.0.1.
func checkCurlLink(t *testing.T, root string) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "gate "+r.URL.Path)
	}))
	defer srv.Close()
	if out := runIn(t, root, "/usr/bin/curl", "-s", srv.URL+"/gate/open"); out != "gate /gate/open" {
		t.Errorf("curl in the image printed %q, want the server's answer %q", out, "gate /gate/open")
	}
	// kubectl exec -it ... sh: the image's sh finds the image's curl by name on the image's PATH
	// (here rooted at the unpacked layer).
	var dirs []string
	for _, d := range strings.Split(searchPath, ":") {
		dirs = append(dirs, filepath.Join(root, d))
	}
	sh := exec.Command(filepath.Join(root, "bin", "sh"), "-c", "curl -s "+srv.URL+"/status/500")
	sh.Args[0] = "/bin/sh"
	sh.Env = []string{"PATH=" + strings.Join(dirs, ":")}
	if out, err := sh.CombinedOutput(); err != nil || string(out) != "gate /status/500" {
		t.Errorf("sh -c 'curl ...' in the image: %v, %q", err, out)
	}
}

func onPath(env []string, dir string) bool {
	for _, e := range env {
		if value, ok := strings.CutPrefix(e, "PATH="); ok {
			return slices.Contains(strings.Split(value, ":"), dir)
		}
	}
	return false
}

// TestIndexListsEveryPlatform cross-compiles a tiny stand-in for amd64 and arm64 (the real
// binaries take minutes to cross-compile on a cold cache; `make image` does it) and checks that
// the index lists both, each with a static binary of its architecture, and that the same
// inputs give the same archive, byte for byte.
func TestIndexListsEveryPlatform(t *testing.T) {
	tiny := target{name: "tiny", pkg: "./hack/image/testdata/tiny", repository: "tiny", title: "Tiny", description: "test stand-in"}
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}
	o := testOptions(t, amd64, arm64)

	index, _ := buildAndReadBack(t, o, tiny)
	images := imagesByPlatform(t, index)
	if len(images) != 2 || images["linux/amd64"] == nil || images["linux/arm64"] == nil {
		t.Fatalf("index lists %v, want linux/amd64 and linux/arm64", keys(images))
	}
	for platform, img := range images {
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.OS + "/" + cfg.Architecture; got != platform {
			t.Errorf("%s image's config says %s", platform, got)
		}
		bin := layerFiles(t, img)["usr/local/bin/tiny"]
		if bin == nil {
			t.Fatalf("%s image has no usr/local/bin/tiny", platform)
		}
		checkStaticELF(t, platform, bin.data, wantMachine[platform])
	}

	first := writeTestArchive(t, o, tiny)
	o.workDir = t.TempDir()
	second := writeTestArchive(t, o, tiny)
	if a, b := fileDigest(t, first), fileDigest(t, second); a != b {
		t.Errorf("two builds of the same inputs differ: %x and %x", a, b)
	}
}

func TestImageRefIsAValidTag(t *testing.T) {
	pennant := targetNamed(t, "pennant")
	for version, want := range map[string]string{
		"v0.1.0":              "ghcr.io/pennant/pennant:v0.1.0",
		"0.1.0+build.7":       "ghcr.io/pennant/pennant:0.1.0-build.7",
		"9e58687-dirty":       "ghcr.io/pennant/pennant:9e58687-dirty",
		"v1.0.0-rc.1/with sp": "ghcr.io/pennant/pennant:v1.0.0-rc.1-with-sp",
	} {
		if got := imageRef(defaultRegistry, pennant, version); got != want {
			t.Errorf("imageRef(%q) = %q, want %q", version, got, want)
		}
	}
}

func TestCommandLineRejectsBadInput(t *testing.T) {
	for name, c := range map[string]config{
		"unknown target":          {targets: "flagger", platforms: "linux/amd64"},
		"no target":               {targets: " , ", platforms: "linux/amd64"},
		"not linux":               {targets: "pennant", platforms: "windows/amd64"},
		"no platform":             {targets: "pennant", platforms: ""},
		"also-tag without a push": {targets: "pennant", platforms: "linux/amd64", alsoTags: "latest"},
	} {
		if _, _, err := resolve(context.Background(), c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, _, err := resolve(context.Background(), config{targets: "pennant", platforms: "linux/amd64", version: "v1", revision: "abc"}); err == nil {
		t.Errorf("SOURCE_DATE_EPOCH=yesterday accepted")
	}
}

// TestCreationTimeIsSourceDateEpoch: the reproducible-builds convention wins over the commit time.
func TestCreationTimeIsSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	got, err := creationTime(context.Background(), moduleRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000000, 0).UTC(); !got.Equal(want) {
		t.Errorf("creation time %s, want %s", got, want)
	}
}

func targetNamed(t *testing.T, name string) target {
	t.Helper()
	for _, tg := range targets {
		if tg.name == name {
			return tg
		}
	}
	t.Fatalf("no target %q", name)
	return target{}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func testOptions(t *testing.T, platforms ...v1.Platform) buildOptions {
	t.Helper()
	if _, err := os.Stat(caBundlePath); err != nil {
		t.Fatalf("the images need the build machine's CA bundle (hack/test.sh installs it: apt-get install ca-certificates): %v", err)
	}
	return buildOptions{
		moduleDir: moduleRoot(t),
		version:   testVersion,
		revision:  testRevision,
		created:   testCreated,
		platforms: platforms,
		caBundle:  caBundlePath,
		workDir:   t.TempDir(),
	}
}

func writeTestArchive(t *testing.T, o buildOptions, tg target) string {
	t.Helper()
	index, err := buildIndex(context.Background(), o, tg)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), tg.name+"-image.tar")
	if err := writeArchive(index, imageRef(defaultRegistry, tg, o.version), o.created, archive); err != nil {
		t.Fatal(err)
	}
	return archive
}

// buildAndReadBack writes tg's archive, unpacks it and opens it as an OCI image layout; it
// returns the image index and the name index.json gives it.
func buildAndReadBack(t *testing.T, o buildOptions, tg target) (v1.ImageIndex, string) {
	t.Helper()
	return readArchive(t, writeTestArchive(t, o, tg), tg.title)
}

// readArchive unpacks an archive, opens it as an OCI image layout and checks the index's labels.
func readArchive(t *testing.T, archive, title string) (v1.ImageIndex, string) {
	t.Helper()
	dir := untar(t, archive)
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("archive is not an OCI image layout: %v", err)
	}
	manifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Manifests) != 1 || manifest.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json should hold one OCI image index, holds %+v", manifest.Manifests)
	}
	desc := manifest.Manifests[0]
	ref := desc.Annotations["org.opencontainers.image.ref.name"]
	if desc.Annotations["io.containerd.image.name"] != ref {
		t.Errorf("index.json names the image %q for OCI tools but %q for containerd", ref, desc.Annotations["io.containerd.image.name"])
	}
	index, err := top.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	checkLabels(t, "image index annotations", im.Annotations, title)
	return index, ref
}

func imagesByPlatform(t *testing.T, index v1.ImageIndex) map[string]v1.Image {
	t.Helper()
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{}
	for _, desc := range manifest.Manifests {
		if desc.MediaType != types.OCIManifestSchema1 || desc.Platform == nil {
			t.Fatalf("index entry %s: media type %s, platform %v; want an OCI manifest with a platform", desc.Digest, desc.MediaType, desc.Platform)
		}
		img, err := index.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		images[desc.Platform.String()] = img
	}
	return images
}

var wantMachine = map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}

// checkStaticELF fails unless binary is a statically linked ELF executable for machine: the
// empty base has no libc for a dynamic one.
func checkStaticELF(t *testing.T, platform string, binary []byte, machine elf.Machine) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Fatalf("%s binary is not ELF: %v", platform, err)
	}
	if f.Machine != machine {
		t.Errorf("%s binary is for %s, want %s", platform, f.Machine, machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s binary is dynamically linked (has an ELF interpreter): CGO_ENABLED=0 missing", platform)
		}
	}
}

func checkLabels(t *testing.T, where string, got map[string]string, title string) {
	t.Helper()
	want := map[string]string{
		"org.opencontainers.image.title":    title,
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": testRevision,
		"org.opencontainers.image.source":   "https://github.com/pennant/pennant",
		"org.opencontainers.image.licenses": "Apache-2.0",
		"org.opencontainers.image.created":  "2024-05-06T07:08:09Z",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", where, k, got[k], v)
		}
	}
}

type layerFile struct {
	hdr  *tar.Header
	data []byte
}

// layerFiles reads the image's single layer and checks what every entry must be: root-owned,
// no setuid/setgid, no path outside the root.
func layerFiles(t *testing.T, img v1.Image) map[string]*layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1 on an empty base", len(layers))
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	files := map[string]*layerFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.Mode&0o6000 != 0 || strings.HasPrefix(hdr.Name, "/") || strings.Contains(hdr.Name, "..") {
			t.Errorf("layer entry %s: uid %d gid %d mode %o; want root-owned, no setuid/setgid, relative", hdr.Name, hdr.Uid, hdr.Gid, hdr.Mode)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = &layerFile{hdr: hdr, data: data}
	}
	return files
}

// unpack writes a layer's entries under a new directory, as a container's root.
func unpack(t *testing.T, files map[string]*layerFile) string {
	t.Helper()
	root := t.TempDir()
	names := keys(files)
	slices.Sort(names) // parents before children
	for _, name := range names {
		f, dst := files[name], filepath.Join(root, filepath.FromSlash(name))
		var err error
		switch f.hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o755)
		case tar.TypeSymlink:
			err = os.Symlink(f.hdr.Linkname, dst)
		case tar.TypeReg:
			err = os.WriteFile(dst, f.data, os.FileMode(f.hdr.Mode)&os.ModePerm)
		default:
			t.Fatalf("layer entry %s has type %c", name, f.hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runIn runs the program at path in the unpacked image root with args and the image's nothing
// of an environment, and returns its output.
func runIn(t *testing.T, root, path string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, filepath.FromSlash(path)), args...)
	cmd.Args[0] = path // argv[0] as in the container: the load tester is curl by this name
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", path, args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func untar(t *testing.T, archive string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(hdr.Name, "..") || strings.HasPrefix(hdr.Name, "/") {
			t.Fatalf("archive entry %q escapes the layout", hdr.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o755)
		case tar.TypeReg:
			var data []byte
			if data, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(dst, data, 0o644)
			}
		default:
			t.Fatalf("archive entry %s has type %c; an OCI layout holds files and directories", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func fileDigest(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestPushToALocalRegistry runs the command line's -push against go-containerregistry's
// in-memory registry on 127.0.0.1 (never a real one) and pulls back what it pushed: the index
// under the version's tag and under each -also-tag, with the digest the archive has.
func TestPushToALocalRegistry(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("builds a linux image")
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // anonymous: no credentials of this machine's user
	t.Setenv("SOURCE_DATE_EPOCH", strconv.FormatInt(testCreated.Unix(), 10))
	host := strings.TrimPrefix(srv.URL, "http://")
	out := t.TempDir()

	err := run(context.Background(), config{
		targets: "pennant", platforms: "linux/" + runtime.GOARCH, version: testVersion, revision: testRevision,
		out: out, caBundle: caBundlePath, registry: host + "/pennant", push: true, alsoTags: "latest",
	})
	if err != nil {
		t.Fatal(err)
	}
	archived, ref := readArchive(t, filepath.Join(out, "pennant-image.tar"), "Pennant")
	if want := host + "/pennant/pennant:" + testTag; ref != want {
		t.Errorf("archive names the image %q, want %q", ref, want)
	}
	want, err := archived.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{testTag, "latest"} {
		ref, err := name.ParseReference(host + "/pennant/pennant:" + tag)
		if err != nil {
			t.Fatal(err)
		}
		pushed, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("%s was not pushed: %v", ref, err)
		}
		if got, err := pushed.Digest(); err != nil || got != want {
			t.Errorf("%s has digest %s (%v), want the archive's %s", ref, got, err, want)
		}
	}
}
