//! The identifiers the daemon gives new entities: random UUIDs (version 4). The domain takes
//! them as a parameter, like the time, so only the daemon's edge draws random numbers.

use uuid::Uuid;

use crate::domain::IdSource;

/// Random identifiers, for every domain operation the daemon runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_uuid(&self) -> Uuid {
        Uuid::new_v4()
    }
}
