package controller

// The ClusterRole `pennant` (config/rbac/role.yaml) is generated from the markers below by
// `make generate`. They list only what the controller does:
//
//   - Leases are not here: leader election uses a Lease in the controller's own namespace only,
//     granted by the hand-written Role config/rbac/leader_election_role.yaml.
//   - Secrets and ConfigMaps are read cluster-wide (checksums of the target's configs, MetricTemplate
//     and AlertProvider secrets) and written only as the `<name>-primary` copies need: create a missing
//     copy, update a changed one, delete an immutable one to recreate it (internal/workload/configs.go).
//     They are never patched.
//
// What RBAC cannot narrow, and why:
//   - create cannot be limited by resourceNames (the name is not known to the authorizer before the
//     object exists), and resourceNames takes no patterns, so the `-primary` suffix cannot be expressed:
//     the Secret/ConfigMap writes stay cluster-wide. An admission policy (ValidatingAdmissionPolicy on
//     the service account, name ending in -primary) is the tool for that, not RBAC.
//   - Canaries live in any namespace, so a ClusterRole is needed for everything a canary targets; with
//     -namespace the same rules can be bound by a RoleBinding in that namespace instead.

// +kubebuilder:rbac:groups=flagger.app,resources=canaries;metrictemplates;alertproviders,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=flagger.app,resources=canaries/status;canaries/finalizers,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=deployments;daemonsets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps;secrets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=keda.sh,resources=scaledobjects,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes;grpcroutes,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways,verbs=get;list;watch
// +kubebuilder:rbac:groups=gloo.solo.io,resources=upstreams,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=gateway.solo.io,resources=routetables,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=projectcontour.io,resources=httpproxies,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=traefik.io,resources=traefikservices,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apisix.apache.org,resources=apisixroutes,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=serving.knative.dev,resources=services,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=metrics.keptn.sh,resources=keptnmetrics,verbs=get;list;watch
// +kubebuilder:rbac:groups=metrics.keptn.sh,resources=analyses,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=split.smi-spec.io,resources=trafficsplits,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=kuma.io,resources=trafficroutes,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=appmesh.k8s.aws,resources=virtualnodes;virtualrouters;virtualservices,verbs=get;list;watch;create;update;patch
