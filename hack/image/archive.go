package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// writeArchive writes index as an OCI image layout packed in a tar (what `skopeo copy
// oci-archive:`, `podman load` and `docker load` read), naming it ref in index.json.
func writeArchive(index v1.ImageIndex, ref string, mtime time.Time, out string) error {
	dir, err := os.MkdirTemp(filepath.Dir(out), ".layout-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(index, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref, // podman, skopeo
		"io.containerd.image.name":          ref, // containerd, docker load
	})); err != nil {
		return err
	}
	return tarDir(dir, mtime, out)
}

// tarDir packs dir's files into a reproducible tar at out: sorted, fixed times, root-owned.
func tarDir(dir string, mtime time.Time, out string) (err error) {
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(out + ".tmp")
		}
	}()
	tw := tar.NewWriter(f)
	// WalkDir visits in lexical order, so the same layout always gives the same tar.
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg}
		if d.IsDir() {
			hdr.Name, hdr.Mode, hdr.Typeflag = hdr.Name+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(hdr)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr.Size = info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer func() { _ = src.Close() }()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

// invalidTagChars are those a version may hold but an image tag may not (e.g. "+" in semver).
var invalidTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// imageRef is registry/repository:version, the version made a valid tag.
func imageRef(registry string, t target, version string) string {
	tag := invalidTagChars.ReplaceAllString(version, "-")
	if len(tag) > 128 {
		tag = tag[:128]
	}
	return registry + "/" + t.repository + ":" + tag
}

// push uploads index to ref with the credentials of the local Docker config (`docker login`,
// credential helpers), as crane and ko do.
func push(ctx context.Context, index v1.ImageIndex, ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(r, index, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
