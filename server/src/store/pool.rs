//! Several connections to the relay's database, lent one call at a time: teams proceed in
//! parallel, and a slow call (a big upload's commit, a board loaded whole) holds one
//! connection, not the relay.

use std::sync::{Condvar, Mutex, MutexGuard};

use super::{RelayStore, StoreError};

/// Connections the relay opens unless told otherwise (`fieldbook-relay serve
/// --db-connections`): enough for two cores' worth of work and a reader or two waiting on
/// the disk or the network.
pub const DEFAULT_CONNECTIONS: usize = 4;

pub struct StorePool {
    idle: Mutex<Vec<Box<dyn RelayStore>>>,
    returned: Condvar,
    size: usize,
}

impl StorePool {
    /// `size` connections to the database `url` names (one for `sqlite::memory:`, whose
    /// connections would each see a database of their own).
    pub fn open(url: &str, size: usize) -> Result<StorePool, StoreError> {
        let size = if url == "sqlite::memory:" {
            1
        } else {
            size.max(1)
        };
        Ok(StorePool::new(super::open_many(url, size)?))
    }

    pub fn new(stores: Vec<Box<dyn RelayStore>>) -> StorePool {
        StorePool {
            size: stores.len(),
            idle: Mutex::new(stores),
            returned: Condvar::new(),
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Run `f` on a connection, waiting for one to be free. The caller blocks: call it off
    /// the async workers (`block_in_place`, `spawn_blocking`).
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn RelayStore) -> T) -> T {
        let mut lent = Lent {
            pool: self,
            store: Some(self.take()),
        };
        f(lent.store())
    }

    fn take(&self) -> Box<dyn RelayStore> {
        let mut idle = self.lock();
        loop {
            if let Some(store) = idle.pop() {
                return store;
            }
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Box<dyn RelayStore>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection out of the pool, given back when dropped (a panicking call included).
struct Lent<'p> {
    pool: &'p StorePool,
    store: Option<Box<dyn RelayStore>>,
}

impl Lent<'_> {
    fn store(&mut self) -> &mut dyn RelayStore {
        self.store
            .as_deref_mut()
            .expect("a lent connection is held until the loan is dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            self.pool.lock().push(store);
            self.pool.returned.notify_one();
        }
    }
}
