package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// GetOptions are the flags of `get`.
type GetOptions struct {
	// Output is "" (a table), "json" or "yaml".
	Output string
	// Watch keeps printing changes until ctx ends.
	Watch bool
	// Redraw redraws the whole table in place on every change (a terminal); otherwise a watch prints
	// one line per changed canary.
	Redraw bool
}

// Get prints the canaries (or the one named name) as a table, JSON or YAML.
func (e *Env) Get(ctx context.Context, name string, o GetOptions) error {
	if o.Watch {
		if o.Output != "" {
			return fmt.Errorf("--watch prints a table; it cannot be combined with -o %s", o.Output)
		}
		return e.watchTable(ctx, name, o.Redraw)
	}
	list, err := e.list(ctx, name)
	if err != nil {
		return err
	}
	if o.Output != "" {
		return e.printObjects(list, name != "", o.Output)
	}
	if len(list) == 0 {
		where := "namespace " + e.Namespace
		if e.AllNamespaces {
			where = "any namespace"
		}
		_, err := fmt.Fprintf(e.ErrOut, "No canaries found in %s.\n", where)
		return err
	}
	return e.writeTable(e.Out, list)
}

// list reads the canaries to show, sorted by namespace and name.
func (e *Env) list(ctx context.Context, name string) ([]flaggerv1.Canary, error) {
	if name != "" {
		cd, err := e.canary(ctx, name)
		if err != nil {
			return nil, err
		}
		return []flaggerv1.Canary{*cd}, nil
	}
	var list flaggerv1.CanaryList
	var opts []client.ListOption
	if !e.AllNamespaces {
		opts = append(opts, client.InNamespace(e.Namespace))
	}
	if err := e.Client.List(ctx, &list, opts...); err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Key() < list.Items[j].Key() })
	return list.Items, nil
}

// printObjects writes canaries as kubectl's -o json|yaml does: one object, or a v1 List.
func (e *Env) printObjects(items []flaggerv1.Canary, single bool, format string) error {
	var p printers.ResourcePrinter
	switch format {
	case "json":
		p = &printers.JSONPrinter{}
	case "yaml":
		p = &printers.YAMLPrinter{}
	default:
		return fmt.Errorf("unknown output format %q: use json or yaml", format)
	}
	gvk := flaggerv1.GroupVersion.WithKind(flaggerv1.CanaryKind)
	for i := range items {
		items[i].SetGroupVersionKind(gvk)
	}
	var obj runtime.Object
	if single && len(items) == 1 {
		obj = &items[0]
	} else {
		list := &flaggerv1.CanaryList{Items: items}
		list.SetGroupVersionKind(flaggerv1.GroupVersion.WithKind("CanaryList"))
		obj = list
	}
	return p.PrintObj(obj, e.Out)
}

// columns are the table's headings; row fills them for one canary.
func (e *Env) columns() []string {
	cols := []string{"NAME", "PHASE", "WEIGHT", "STEP", "NEXT STEP", "FAILED CHECKS", "REVISION", "LAST CHANGE"}
	if e.AllNamespaces {
		cols = append([]string{"NAMESPACE"}, cols...)
	}
	return cols
}

func (e *Env) row(cd *flaggerv1.Canary) []string {
	st := cd.Status
	phase := string(st.Phase)
	if phase == "" {
		phase = "-"
	}
	if cd.Spec.Suspend {
		phase += " (suspended)"
	}
	if stalled := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.StalledCondition); stalled != nil &&
		stalled.Status == "True" && st.Phase != flaggerv1.CanaryPhaseFailed {
		phase += " (stalled: " + stalled.Reason + ")"
	}
	r := []string{cd.Name, phase, fmt.Sprintf("%d%%", st.CanaryWeight), stepColumn(cd),
		untilText(nextStepAt(cd), e.Now()), fmt.Sprintf("%d/%d", st.FailedChecks, cd.GetAnalysisThreshold()),
		shortRevision(st.LastAppliedSpec), e.Age(st.LastTransitionTime.Time)}
	if e.AllNamespaces {
		r = append([]string{cd.Namespace}, r...)
	}
	return r
}

// writeTable writes the canaries under the headings, aligned.
func (e *Env) writeTable(w io.Writer, items []flaggerv1.Canary) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(e.columns(), "\t"))
	for i := range items {
		fmt.Fprintln(tw, strings.Join(e.row(&items[i]), "\t"))
	}
	return tw.Flush()
}

// clearScreen moves the cursor home and clears the terminal (ANSI), for a redraw in place.
const clearScreen = "\x1b[H\x1b[2J"

// watchTable follows the canaries. With redraw the table is drawn again on every change and every
// second (the countdowns move); otherwise it prints the headings once and a line per canary whose
// row changed, which reads well in a CI log or a pipe.
func (e *Env) watchTable(ctx context.Context, name string, redraw bool) error {
	current := map[string]flaggerv1.Canary{}
	lastLine := map[string]string{}
	changes := make(chan struct{}, 1)
	draw := func() {
		items := make([]flaggerv1.Canary, 0, len(current))
		for _, cd := range current {
			items = append(items, cd)
		}
		sort.Slice(items, func(i, j int) bool { return items[i].Key() < items[j].Key() })
		fmt.Fprint(e.Out, clearScreen)
		_ = e.writeTable(e.Out, items)
	}
	if !redraw {
		fmt.Fprintln(e.Out, padded(e.columns(), e.columns()))
	}
	seen := func(cd *flaggerv1.Canary, deleted bool) bool {
		key := cd.Key()
		if deleted {
			delete(current, key)
			if !redraw {
				fmt.Fprintf(e.Out, "%s\tdeleted\n", cd.Name)
			}
		} else {
			current[key] = *cd
			if !redraw {
				// The countdown and age move by themselves: a line is printed when the rest changes.
				r := e.row(cd)
				stable := strings.Join(r[:len(r)-1], "\t")
				if lastLine[key] != stable {
					lastLine[key] = stable
					fmt.Fprintln(e.Out, padded(e.columns(), r))
				}
			}
		}
		if redraw {
			select {
			case changes <- struct{}{}:
			default:
			}
		}
		return false
	}
	if !redraw {
		return ignoreEnd(e.watchCanaries(ctx, name, seen))
	}
	// The watch runs alone in its goroutine; the map is only read by the drawing loop below after
	// being handed over through changes, so both run under one lock.
	var mu = make(chan struct{}, 1)
	locked := func(f func()) { mu <- struct{}{}; f(); <-mu }
	errs := make(chan error, 1)
	go func() {
		errs <- e.watchCanaries(ctx, name, func(cd *flaggerv1.Canary, deleted bool) (done bool) {
			locked(func() { done = seen(cd, deleted) })
			return done
		})
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-errs:
			return ignoreEnd(err)
		case <-changes:
		case <-tick.C:
		}
		locked(draw)
	}
}

// ignoreEnd treats the end of the context (Ctrl-C, --timeout) as the normal end of a watch.
func ignoreEnd(err error) error {
	if err == context.Canceled || err == context.DeadlineExceeded {
		return nil
	}
	return err
}

// Names lists the canaries of the namespace, for shell completion.
func (e *Env) Names(ctx context.Context) ([]string, error) {
	items, err := e.list(ctx, "")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(items))
	for i := range items {
		names[i] = items[i].Name
	}
	return names, nil
}

// pipeWidths are the columns' widths in a piped watch, which cannot align on rows to come.
var pipeWidths = map[string]int{"NAMESPACE": 16, "NAME": 20, "PHASE": 12, "WEIGHT": 6, "STEP": 5,
	"NEXT STEP": 9, "FAILED CHECKS": 13, "REVISION": 8}

// padded lays a row out in the columns' fixed widths, three spaces apart.
func padded(columns, cells []string) string {
	var b strings.Builder
	for i, c := range cells {
		if i == len(cells)-1 {
			b.WriteString(c)
			break
		}
		w := max(pipeWidths[columns[i]], len([]rune(c)))
		b.WriteString(c + strings.Repeat(" ", w-len([]rune(c))+3))
	}
	return b.String()
}
