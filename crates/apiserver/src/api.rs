//! The server's shared state ([`Api`]) and the store operations every verb builds on: read,
//! insert, replace and remove one object, each mapping store errors to the Status kubectl
//! expects for that resource and name. Also the objects that exist from the first start:
//! the `default`, `kube-system`, `kube-public` and `kube-node-lease` namespaces, each with
//! its `default` service account.

use std::sync::Arc;

use serde_json::{Value, json};
use store::Backend;

use crate::error::ApiError;
use crate::handlers::create::{self, CreateOptions};
use crate::logs::LogSlot;
use crate::objects;
use crate::resources::{self, Resource};

/// What every request handler shares.
pub struct Api {
    pub store: Arc<dyn Backend>,
    pub token: String,
    /// The `https://` URL clients reach the server at.
    pub url: String,
    /// Where `pods/log` is served from.
    pub logs: LogSlot,
    /// Woken after every pod or node write, so the scheduler looks again.
    pub schedule: tokio::sync::Notify,
}

/// The namespaces a cluster has from its first start.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Api {
    pub fn new(store: Arc<dyn Backend>, token: String, url: String) -> Self {
        Api {
            store,
            token,
            url,
            logs: LogSlot::default(),
            schedule: tokio::sync::Notify::new(),
        }
    }

    /// One object and its revision.
    pub async fn read(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(Value, i64), ApiError> {
        let kv = self
            .store
            .get(&res.key(ns, name))
            .await
            .map_err(|e| ApiError::from_store(e, res, name))?
            .ok_or_else(|| ApiError::not_found(res, name))?;
        Ok((objects::from_kv(&kv)?, kv.mod_revision))
    }

    /// Stores a new object; returns it with its `resourceVersion`.
    pub async fn insert(&self, res: &Resource, obj: &Value) -> Result<Value, ApiError> {
        let name = objects::name(obj);
        let key = res.key(objects::namespace(obj), name);
        let kv = self
            .store
            .create(&key, objects::to_bytes(obj))
            .await
            .map_err(|e| ApiError::from_store(e, res, name))?;
        self.written(res);
        objects::from_kv(&kv)
    }

    /// Replaces an object, if it is still at `expected` when given.
    pub async fn replace(
        &self,
        res: &Resource,
        obj: &Value,
        expected: Option<i64>,
    ) -> Result<Value, ApiError> {
        let name = objects::name(obj);
        let key = res.key(objects::namespace(obj), name);
        let kv = self
            .store
            .update(&key, objects::to_bytes(obj), expected)
            .await
            .map_err(|e| ApiError::from_store(e, res, name))?;
        self.written(res);
        objects::from_kv(&kv)
    }

    /// Removes an object, if it is still at `expected` when given; returns it as it was.
    pub async fn remove(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        expected: Option<i64>,
    ) -> Result<Value, ApiError> {
        let kv = self
            .store
            .delete(&res.key(ns, name), expected)
            .await
            .map_err(|e| ApiError::from_store(e, res, name))?;
        self.written(res);
        objects::from_kv(&kv)
    }

    /// Every live object under `prefix`, at one revision.
    pub async fn list_all(
        &self,
        res: &Resource,
        prefix: &str,
    ) -> Result<(Vec<Value>, i64), ApiError> {
        let page = self
            .store
            .list(prefix, None, 0, None)
            .await
            .map_err(|e| ApiError::from_store(e, res, ""))?;
        let items = page
            .items
            .iter()
            .map(objects::from_kv)
            .collect::<Result<_, _>>()?;
        Ok((items, page.revision))
    }

    /// Gives a new namespace its `default` service account, as the Kubernetes service
    /// account controller does.
    pub async fn default_service_account(&self, ns: &str) -> Result<(), ApiError> {
        let sar = resources::serviceaccounts();
        let sa = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": ns, "uid": objects::new_uid(),
                         "creationTimestamp": objects::now()},
        });
        match self.insert(sar, &sa).await {
            Err(e) if e.reason != "AlreadyExists" => Err(e),
            _ => Ok(()),
        }
    }

    fn written(&self, res: &Resource) {
        if res.plural == "pods" || res.plural == "nodes" {
            self.schedule.notify_one();
        }
    }

    /// Refuses a namespaced write into a namespace that does not exist.
    pub async fn require_namespace(&self, ns: &str) -> Result<(), ApiError> {
        let nsr = resources::namespaces();
        match self.store.get(&nsr.key(None, ns)).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ApiError::not_found(nsr, ns)),
            Err(e) => Err(ApiError::from_store(e, nsr, ns)),
        }
    }

    /// Creates the system namespaces (and their service accounts) that are missing.
    pub async fn bootstrap(&self) -> Result<(), ApiError> {
        let nsr = resources::namespaces();
        for ns in SYSTEM_NAMESPACES {
            if self
                .store
                .get(&nsr.key(None, ns))
                .await
                .ok()
                .flatten()
                .is_some()
            {
                continue;
            }
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let opts = CreateOptions::internal();
            match create::create(self, nsr, obj, &opts).await {
                Ok(_) => tracing::debug!(namespace = ns, "created a system namespace"),
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
