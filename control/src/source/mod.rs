//! Sources of Kubernetes objects. Today: a directory of manifests, read whole and watched with
//! inotify. The Kubernetes API watcher will sit beside it and feed the same store.

pub mod kube;
pub mod manifests;
pub mod watch;
