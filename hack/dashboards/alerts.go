package main

// The alert rules: Flagger's documented canary_rollback rule, kept as its docs and the seeds write
// it, and the alerts a platform team running Pennant wants besides. They are written twice from
// these definitions: as a plain Prometheus rule file (promtool check rules, rule_files:) and as a
// PrometheusRule for the Prometheus Operator.

// ruleFile is a Prometheus rule file; its groups are also a PrometheusRule's spec.
type ruleFile struct {
	Groups []ruleGroup `json:"groups"`
}

type ruleGroup struct {
	Name  string `json:"name"`
	Rules []rule `json:"rules"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// prometheusRule is the Prometheus Operator's monitoring.coreos.com/v1 PrometheusRule.
type prometheusRule struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       ruleFile       `json:"spec"`
}

const alertGroup = "pennant"

func alertRules() ruleFile {
	return ruleFile{Groups: []ruleGroup{{
		Name: alertGroup,
		Rules: []rule{
			{
				// Flagger's rule, verbatim: existing Alertmanager routes match its name and labels.
				Alert:  "canary_rollback",
				Expr:   "flagger_canary_status > 1",
				For:    "1m",
				Labels: map[string]string{"severity": "warning"},
				Annotations: map[string]string{
					"summary":     "Canary failed",
					"description": "Workload {{ $labels.name }} namespace {{ $labels.namespace }}",
				},
			},
			{
				// A release that neither advances nor ends: Progressing an hour ago and ever since,
				// with the canary's weight unchanged over that hour (a blue/green release keeps its
				// weight, so it is reported once it has run for an hour). The halts Pennant makes
				// without failing a check, such as a primary that is not ready, do not end a release
				// by themselves. The offset keeps a canary whose series are younger than an hour
				// (a new release, a restarted Prometheus) from matching.
				Alert: "canary_stuck",
				Expr: `max_over_time(flagger_canary_status[1h]) == 0
  and on (namespace, name) flagger_canary_status offset 1h == 0
  and on (namespace, name) label_replace(changes(flagger_canary_weight[1h]), "name", "$1", "workload", "(.+)") == 0`,
				For:    "5m",
				Labels: map[string]string{"severity": "warning"},
				Annotations: map[string]string{
					"summary": "Canary release stuck",
					"description": "Canary {{ $labels.name }} in namespace {{ $labels.namespace }} has been Progressing for over an hour " +
						"without its traffic weight changing: see `kubectl -n {{ $labels.namespace }} describe canary` for why the analysis halts.",
				},
			},
			{
				// flagger_info is exported by every running controller: none scraped means no canary
				// is analysed, promoted or rolled back (or Prometheus does not scrape Pennant).
				Alert:  "pennant_down",
				Expr:   "absent(flagger_info)",
				For:    "5m",
				Labels: map[string]string{"severity": "critical"},
				Annotations: map[string]string{
					"summary": "Pennant is down",
					"description": "No Pennant controller has been scraped for 5 minutes: releases are neither analysed, promoted nor rolled back. " +
						"Check the flagger Deployment (namespace flagger-system by default) and Prometheus' scrape of its port 8080.",
				},
			},
			{
				Alert:  "pennant_notifications_failing",
				Expr:   `sum by (kind) (rate(pennant_notifications_failed_total[5m])) > 0`,
				For:    "10m",
				Labels: map[string]string{"severity": "warning"},
				Annotations: map[string]string{
					"summary": "Pennant notifications failing",
					"description": "Pennant has failed to deliver {{ $labels.kind }} notifications for 10 minutes " +
						"(Slack, Teams, Discord, Rocket, Google Chat or the event webhook): see the controller's log for the destination and the error.",
				},
			},
			{
				Alert:  "pennant_notifications_dropped",
				Expr:   `sum by (reason) (increase(pennant_notifications_dropped_total[10m])) > 0`,
				Labels: map[string]string{"severity": "warning"},
				Annotations: map[string]string{
					"summary":     "Pennant notifications dropped",
					"description": "Pennant dropped notifications before delivery in the last 10 minutes (reason: {{ $labels.reason }}).",
				},
			},
		},
	}}}
}

// prometheusRuleOf wraps rules into a PrometheusRule named pennant. Its namespace is the one it is
// applied to; the Prometheus Operator's ruleSelector must match its labels (kube-prometheus-stack's
// default selects release=<its release name>: add that label with kustomize if needed).
func prometheusRuleOf(rules ruleFile) prometheusRule {
	return prometheusRule{
		APIVersion: "monitoring.coreos.com/v1",
		Kind:       "PrometheusRule",
		Metadata: map[string]any{
			"name":   "pennant",
			"labels": map[string]string{"app.kubernetes.io/name": "pennant", "app.kubernetes.io/component": "alerts"},
		},
		Spec: rules,
	}
}
