package main

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Helpers shared by every dashboard: the data source, template variables, queries and the few panel
// shapes the dashboards are made of.

// datasourceVariable is the name of the data source variable. Every panel and query variable reads
// from ${DS_PROMETHEUS}, so the dashboards work with any Prometheus data source, whatever its uid:
// Grafana picks the default Prometheus one and offers the others in a drop-down.
const datasourceVariable = "DS_PROMETHEUS"

// refresh and timeFrom are the dashboards' defaults; the seeds' URLs pass refresh=10s as well.
const (
	refresh  = "10s"
	timeFrom = "now-15m"
)

// tags are the tags of every dashboard, so that Grafana's search finds them under either name.
var tags = []string{"flagger", "pennant"}

func ptr[T any](v T) *T { return &v }

// datasource is the reference every panel and query variable uses.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${" + datasourceVariable + "}")}
}

// datasourceVar is the data source drop-down.
func datasourceVar() cog.Builder[dashboard.VariableModel] {
	return dashboard.NewDatasourceVariableBuilder(datasourceVariable).Label("Data source").Type("prometheus")
}

// queryVar is a drop-down filled by a label_values() query. The seeds' URLs set its value
// (var-namespace=prod); the query only fills the list to choose from.
func queryVar(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource()).
		Query(dashboard.StringOrMap{String: ptr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// multiVar is a query variable that selects several values or all of them; "All" stands for ".*" so
// that the queries stay short whatever the number of canaries.
func multiVar(name, label, query string) *dashboard.QueryVariableBuilder {
	return queryVar(name, label, query).Multi(true).IncludeAll(true).AllValue(".*")
}

// target is one PromQL query of a panel, over a time range.
func target(refID, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(refID).
		Datasource(datasource()).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// series is a time series panel of the given queries.
func series(title, description, unit string, width, height uint32, targets ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Span(width).
		Height(height).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true))
	for _, t := range targets {
		p.WithTarget(t)
	}
	return p
}

// single is a stat panel of the last value of one query, with its sparkline.
func single(title, description, unit string, width, height uint32, t *prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		Unit(unit).
		Span(width).
		Height(height).
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeValue).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		WithTarget(t)
}

// thresholds colours values from base upwards: steps are (value, colour) pairs above the base colour.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	list := []dashboard.Threshold{{Value: nil, Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		list = append(list, dashboard.Threshold{Value: ptr(steps[i].(float64)), Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(list)
}

// newDashboard is a dashboard with the settings every one of them shares.
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags(tags).
		Editable().
		Refresh(refresh).
		Time(timeFrom, "now").
		Timezone("browser").
		Tooltip(dashboard.DashboardCursorSyncCrosshair)
}

// build builds a dashboard and numbers its panels 1, 2, ... in layout order, so that panel links
// (viewPanel=N) stay the same from one generation to the next.
func build(b *dashboard.DashboardBuilder) (dashboard.Dashboard, error) {
	d, err := b.Build()
	if err != nil {
		return d, err
	}
	id := uint32(0)
	for _, p := range d.Panels {
		id++
		switch {
		case p.Panel != nil:
			p.Panel.Id = ptr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
			for i := range p.RowPanel.Panels {
				id++
				p.RowPanel.Panels[i].Id = ptr(id)
			}
		}
	}
	return d, nil
}
