package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/config/crd"
	"github.com/pennant/pennant/internal/controller"
)

// LintProblem is one error found in a manifest.
type LintProblem struct {
	File string
	// Doc is the position of the YAML document in the file, from 1.
	Doc int
	// Object is "namespace/name" of the canary ("" when the manifest has none).
	Object string
	// Field is the field path, e.g. spec.analysis.interval ("" for the object as a whole).
	Field   string
	Message string
}

func (p LintProblem) String() string {
	where := fmt.Sprintf("%s (document %d", p.File, p.Doc)
	if p.Object != "" {
		where += ", Canary " + p.Object
	}
	where += ")"
	if p.Field == "" {
		return where + ": " + p.Message
	}
	return fmt.Sprintf("%s: %s: %s", where, p.Field, p.Message)
}

// Linter checks Canary manifests offline: against the CRD schema the repository generates
// (OpenAPI, unknown fields and the x-kubernetes-validations CEL rules, as the API server checks
// them) and against the controller's own validation (internal/controller.Validate).
type Linter struct {
	// MeshProvider is the controller's -mesh-provider, used for canaries without spec.provider.
	MeshProvider string

	structural *structuralschema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

// NewLinter compiles the embedded Canary CRD's schema.
func NewLinter(meshProvider string) (*Linter, error) {
	var def apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(crd.Canaries, &def); err != nil {
		return nil, fmt.Errorf("reading the embedded Canary CRD: %w", err)
	}
	var v1props *apiextensionsv1.JSONSchemaProps
	for _, v := range def.Spec.Versions {
		if v.Name == flaggerv1.GroupVersion.Version && v.Schema != nil {
			v1props = v.Schema.OpenAPIV3Schema
		}
	}
	if v1props == nil {
		return nil, errors.New("the embedded Canary CRD has no v1beta1 schema")
	}
	var props apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1props, &props, nil); err != nil {
		return nil, err
	}
	s, err := structuralschema.NewStructural(&props)
	if err != nil {
		return nil, fmt.Errorf("the Canary CRD's schema is not structural: %w", err)
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(&props)
	if err != nil {
		return nil, err
	}
	return &Linter{MeshProvider: meshProvider, structural: s, schema: validator,
		cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}, nil
}

// LintFiles checks every Canary in the files ("-" reads standard input) and writes each problem
// and a summary to out. It returns an *ExitError with code 1 when there are problems.
func (l *Linter) LintFiles(ctx context.Context, paths []string, stdin io.Reader, out io.Writer) error {
	var problems []LintProblem
	canaries := 0
	for _, p := range paths {
		var data []byte
		var err error
		if p == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(p)
		}
		if err != nil {
			return err
		}
		name := p
		if p == "-" {
			name = "<stdin>"
		}
		n, ps := l.Lint(ctx, name, data)
		canaries += n
		problems = append(problems, ps...)
	}
	for _, p := range problems {
		fmt.Fprintln(out, p)
	}
	if len(problems) > 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("%d error(s) in %d canaries", len(problems), canaries)}
	}
	fmt.Fprintf(out, "%d canaries valid\n", canaries)
	return nil
}

// Lint checks the Canary documents of one file's data; other kinds are skipped. It returns how many
// canaries it checked and their problems.
func (l *Linter) Lint(ctx context.Context, file string, data []byte) (int, []LintProblem) {
	docs := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var problems []LintProblem
	canaries := 0
	for doc := 1; ; doc++ {
		obj, err := readDocument(docs)
		if errors.Is(err, io.EOF) {
			return canaries, problems
		}
		if err != nil {
			problems = append(problems, LintProblem{File: file, Doc: doc, Message: "not YAML: " + err.Error()})
			return canaries, problems
		}
		if obj == nil || obj["kind"] != flaggerv1.CanaryKind || !strings.HasPrefix(fmt.Sprint(obj["apiVersion"]), flaggerv1.GroupVersion.Group+"/") {
			continue
		}
		canaries++
		at := LintProblem{File: file, Doc: doc, Object: objectName(obj)}
		for _, fe := range l.check(ctx, obj) {
			p := at
			p.Field, p.Message = fe.Field, fe.ErrorBody()
			problems = append(problems, p)
		}
	}
}

// readDocument reads the next YAML document as the API server reads JSON: integers as int64 (the
// CEL rules compare them as int), nil for an empty document.
func readDocument(docs *utilyaml.YAMLReader) (map[string]any, error) {
	raw, err := docs.Read()
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// check validates one canary object as the API server would, then (when the schema accepts it)
// with the controller's validation.
func (l *Linter) check(ctx context.Context, obj map[string]any) field.ErrorList {
	if obj["apiVersion"] != flaggerv1.GroupVersion.String() {
		return field.ErrorList{field.NotSupported(field.NewPath("apiVersion"), obj["apiVersion"], []string{flaggerv1.GroupVersion.String()})}
	}
	var errs field.ErrorList
	pruned := runtime.DeepCopyJSON(obj)
	opts := structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}
	unknown := pruning.PruneWithOptions(pruned, l.structural, true, opts)
	sort.Strings(unknown)
	for _, path := range unknown {
		errs = append(errs, field.Forbidden(field.NewPath(path), "unknown field: not in the Canary CRD (the API server would drop it)"))
	}
	if name, _, _ := unstructuredString(obj, "metadata", "name"); name == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), ""))
	}
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, pruned, l.schema)...)
	celErrs, _ := l.cel.Validate(ctx, nil, l.structural, pruned, nil, celconfig.RuntimeCELCostBudget)
	errs = append(errs, celErrs...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
		return errs
	}
	raw, err := json.Marshal(pruned)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	var cd flaggerv1.Canary
	if err := json.Unmarshal(raw, &cd); err != nil {
		return field.ErrorList{field.Invalid(nil, nil, err.Error())}
	}
	if err := controller.Validate(&cd, l.MeshProvider); err != nil {
		return field.ErrorList{controllerError(err)}
	}
	return nil
}

// controllerError turns the controller's "analysis.x: message" or "spec.x …" text into a field
// error on the spec path it names.
func controllerError(err error) *field.Error {
	msg := err.Error()
	word, rest, _ := strings.Cut(msg, " ")
	path := strings.TrimSuffix(word, ":")
	if strings.HasPrefix(path, "analysis.") || strings.HasPrefix(path, "spec.") {
		path = strings.TrimPrefix(path, "spec.")
		if !strings.HasSuffix(word, ":") {
			rest = msg // "analysis.stepWeights must be …": the path is part of the sentence
		}
		return &field.Error{Type: field.ErrorTypeInvalid, Field: "spec." + path, Detail: rest, BadValue: field.OmitValueType{}}
	}
	return &field.Error{Type: field.ErrorTypeInvalid, Field: "spec", Detail: msg, BadValue: field.OmitValueType{}}
}

func objectName(obj map[string]any) string {
	name, _, _ := unstructuredString(obj, "metadata", "name")
	if ns, _, _ := unstructuredString(obj, "metadata", "namespace"); ns != "" {
		return ns + "/" + name
	}
	return name
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}
