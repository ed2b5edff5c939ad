package v1beta1_test

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/pennant/pennant/internal/testenv"
)

// crdFiles are the CRDs that `make generate` writes from this package's types.
var crdFiles = []string{
	"config/crd/bases/flagger.app_canaries.yaml",
	"config/crd/bases/flagger.app_metrictemplates.yaml",
	"config/crd/bases/flagger.app_alertproviders.yaml",
}

// TestEveryCRDFieldDescribed walks the schema of every version of every CRD and names each field
// that has no description: `kubectl explain` shows these descriptions, which come from the doc
// comments of the Go types (a field without a comment gets its type's comment, if any).
func TestEveryCRDFieldDescribed(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	listed, err := filepath.Glob(filepath.Join(root, "config/crd/bases/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(crdFiles) {
		t.Errorf("config/crd/bases holds %d files, the test checks %d: add the new CRD to crdFiles", len(listed), len(crdFiles))
	}
	for _, file := range crdFiles {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(testenv.Fixture(t, file), &crd); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(crd.Spec.Versions) == 0 {
			t.Fatalf("%s has no versions", file)
		}
		for _, version := range crd.Spec.Versions {
			if version.Schema == nil || version.Schema.OpenAPIV3Schema == nil {
				t.Errorf("%s %s has no openAPIV3Schema", crd.Spec.Names.Kind, version.Name)
				continue
			}
			schema := version.Schema.OpenAPIV3Schema
			for _, part := range []string{"spec", "status"} {
				if _, ok := schema.Properties[part]; !ok {
					t.Errorf("%s %s has no %s in its schema", crd.Spec.Names.Kind, version.Name, part)
				}
			}
			// controller-gen writes the root metadata as a bare object whatever the Go comment says,
			// and the API server refuses anything else there (a description included); it publishes
			// ObjectMeta's schema, described, in its place ("Standard object's metadata").
			root := *schema.DeepCopy()
			if meta, ok := root.Properties["metadata"]; ok && meta.Type == "object" && len(meta.Properties) == 0 {
				meta.Description = "ObjectMeta, published by the API server"
				root.Properties["metadata"] = meta
			}
			var fields int
			missing := undescribed(crd.Spec.Names.Kind, root, &fields)
			if fields < 5 {
				t.Errorf("%s %s: only %d fields walked", crd.Spec.Names.Kind, version.Name, fields)
			}
			if len(missing) > 0 {
				t.Errorf("%s %s: %d of %d fields have no description (write a doc comment on the Go field):\n  %s",
					crd.Spec.Names.Kind, version.Name, len(missing), fields, strings.Join(missing, "\n  "))
			}
		}
	}
}

// undescribed returns the paths of the fields below s (named by path) that have no description,
// recursing into properties, array items and map values, and counts the fields it visits.
// Items and map values are not fields themselves: their description is the field's.
func undescribed(path string, s apiextensionsv1.JSONSchemaProps, fields *int) []string {
	var missing []string
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		prop := s.Properties[name]
		*fields++
		if strings.TrimSpace(prop.Description) == "" {
			missing = append(missing, path+"."+name)
		}
		missing = append(missing, undescribed(path+"."+name, prop, fields)...)
	}
	if s.Items != nil {
		if s.Items.Schema != nil {
			missing = append(missing, undescribed(path+"[]", *s.Items.Schema, fields)...)
		}
		for _, item := range s.Items.JSONSchemas {
			missing = append(missing, undescribed(path+"[]", item, fields)...)
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		missing = append(missing, undescribed(path+"{}", *s.AdditionalProperties.Schema, fields)...)
	}
	for _, group := range [][]apiextensionsv1.JSONSchemaProps{s.AllOf, s.AnyOf, s.OneOf} {
		for _, alt := range group {
			missing = append(missing, undescribed(path, alt, fields)...)
		}
	}
	return missing
}
