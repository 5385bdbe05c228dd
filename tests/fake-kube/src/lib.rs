//! A fake Kubernetes API server for tests: list and watch of pods and InferencePools, and
//! ConfigMaps, Leases and Events that clients also create, update and delete.
//!
//! [`FakeKube::start`] serves plain HTTP on `127.0.0.1`; [`FakeKube::write_kubeconfig`]
//! writes a kubeconfig that kube-rs (`Config::from_kubeconfig`, `Config::infer` through
//! `KUBECONFIG`) accepts. Tests change objects with [`FakeKube::apply_pod`],
//! [`FakeKube::set_ready`], [`FakeKube::set_terminating`], [`FakeKube::delete_pod`],
//! [`FakeKube::apply_inference_pool`] and [`FakeKube::delete_inference_pool`], break clients
//! with [`FakeKube::compact`] and [`FakeKube::set_down`], and assert on
//! [`FakeKube::counters`] and [`FakeKube::requests`].
//!
//! # Served
//!
//! - `GET /api/v1/pods`, `/api/v1/namespaces/{ns}/pods[/{name}]` (core/v1 Pod) and
//!   `/apis/inference.networking.k8s.io/v1[/namespaces/{ns}]/inferencepools[/{name}]`
//!   (InferencePool v1: `spec.selector.matchLabels`, `spec.targetPorts[].number`,
//!   `spec.endpointPickerRef`).
//! - `/api/v1[/namespaces/{ns}]/configmaps[/{name}]` (core/v1 ConfigMap) and
//!   `/apis/coordination.k8s.io/v1[/namespaces/{ns}]/leases[/{name}]` (Lease): get, list and
//!   watch as above, and writes from clients: `POST` to the namespaced collection (201;
//!   409 `AlreadyExists`), `PUT` of an object (200; 409 `Conflict` when the body's
//!   `metadata.resourceVersion` is not the stored one, unconditional without one; 404 when
//!   missing) and `DELETE` (200 with the object's last state; 404 when missing). A body whose
//!   name or namespace disagrees with the path gets 400, one without a name 422. Read them
//!   back with [`FakeKube::config_map`], [`FakeKube::config_map_names`] and [`FakeKube::lease`].
//! - `/api/v1[/namespaces/{ns}]/events[/{name}]` (core/v1 Event, as `kubectl describe` and
//!   kube-rs' `Api::<Event>::create` use them): the same reads and writes as ConfigMaps;
//!   field selectors `involvedObject.{apiVersion,fieldPath,kind,name,namespace,
//!   resourceVersion,uid}`, `reason`, `reportingComponent`, `source` (`source.component`)
//!   and `type`. Read them back with [`FakeKube::events`], oldest first.
//! - A create with `metadata.generateName` and no name gets the prefix and five characters
//!   of the real server's alphabet, unique in the namespace; neither gives 422.
//! - `GET /version`, `/api`, `/api/v1` (pods, configmaps, events), `/apis`, `/apis/inference.networking.k8s.io/v1`,
//!   `/apis/coordination.k8s.io/v1`.
//! - Anything else: 404 (405 for other methods on served paths), with a `Status` body.
//!
//! # Faithful
//!
//! - One resourceVersion counter across all objects; every write bumps it, identical writes
//!   are no-ops. Objects carry `uid`, `creationTimestamp`, `resourceVersion`, and
//!   InferencePools `generation`.
//! - Lists: `metadata.resourceVersion`; `labelSelector` (`=`, `==`, `!=`, `in`, `notin`,
//!   exists, `!`); `fieldSelector` (`metadata.name`, `metadata.namespace`, and for pods
//!   `spec.nodeName`, `status.phase`, `status.podIP`; others get 400 like the real server);
//!   `limit`/`continue` pages that are one consistent snapshot; `resourceVersion` with
//!   `resourceVersionMatch=NotOlderThan` (current state) or `Exact` (the state at that
//!   version, 410 Gone once compacted); a version newer than the server's gets 504. Items of
//!   pod lists omit `apiVersion`/`kind`, custom resources' keep them.
//! - Watches (`watch=true`): newline-delimited `ADDED`/`MODIFIED`/`DELETED` events after
//!   `resourceVersion`, replayed from history; without one (or `0`), ADDED events for the
//!   current state first, then a bookmark annotated `k8s.io/initial-events-end` with
//!   `sendInitialEvents=true`. An object that stops matching the selectors is DELETED for the
//!   watch, one that starts matching is ADDED. `BOOKMARK` events when `allowWatchBookmarks`
//!   is set, every [`DEFAULT_BOOKMARK_INTERVAL`] (see [`FakeKube::set_bookmark_interval`]) and
//!   on [`FakeKube::send_bookmarks`]. `timeoutSeconds` ends the stream cleanly.
//! - A watch from a compacted resourceVersion is answered 200 with an in-stream
//!   `ERROR` event (`Status`, code 410, reason `Expired`) and ends, as the real API server's
//!   watch cache does; kube-rs' watcher then lists again. Lists from a compacted version
//!   (exact match or continue token) get HTTP 410.
//!
//! # Not faithful
//!
//! - No TLS, authentication, authorization or admission. Pods and InferencePools change only
//!   through the test controls. Writes take no dry run, no patches, no delete
//!   preconditions or finalizers; ConfigMap, Lease and Event bodies are not validated, and
//!   Events are not aggregated (`count` is the client's) nor expired after an hour. No
//!   protobuf, no table or metadata-only (`PartialObjectMetadata`) responses: `Accept` is
//!   ignored and JSON is always served.
//! - History is kept in memory (the last 10 000 changes) and forgotten only by
//!   [`FakeKube::compact`], which also ends every open watch: the real server only does that
//!   when a watcher falls behind the compaction.
//! - Continue tokens are readable (`<rv>/<namespace>/<name>`), not opaque base64.
//! - A list at a version newer than the server's gets 504 at once instead of after waiting
//!   for it (kube's client retries 504s with backoff, up to 15 times).
//! - While down, connections are accepted and closed at once rather than refused.
//! - Pods are a fixed shape (one container `main`); InferencePool specs are not validated.

mod clock;
mod controls;
mod discovery;
mod handler;
mod kind;
mod list;
mod objects;
mod query;
mod selector;
mod server;
mod shared;
mod stats;
mod status;
mod store;
mod watch;
mod write;

pub use objects::{FakeInferencePool, FakePod};
pub use server::{FakeKube, DEFAULT_BOOKMARK_INTERVAL};
pub use stats::{Counters, RequestRecord};
pub use store::Missing;
