//! Lambda's concurrency accounting: an account-wide pool, minus what functions reserve.
//!
//! A function with `ReservedConcurrentExecutions` may run that many at once and never more; the
//! others share what is left of the account limit. Over either limit the caller is throttled with
//! the `Reason` AWS gives.

use std::collections::HashMap;

/// Why an invocation was throttled: the `Reason` field of `TooManyRequestsException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// The shared (unreserved) account pool is exhausted.
    ConcurrentInvocationLimitExceeded,
    /// The function's reserved concurrency is exhausted (or is 0).
    ReservedFunctionConcurrentInvocationLimitExceeded,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConcurrentInvocationLimitExceeded => "ConcurrentInvocationLimitExceeded",
            Self::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConcurrencyError {
    #[error("functions reserve {reserved} concurrent executions in all, more than the account limit of {account_limit}; lower ReservedConcurrentExecutions or raise --account-concurrency")]
    OverReserved { reserved: u64, account_limit: u32 },
    /// Lambda's own message for a `PutFunctionConcurrency` that leaves too little unreserved.
    #[error("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{minimum}].")]
    BelowMinimumUnreserved { minimum: u32 },
}

/// Lambda keeps at least this much of the account's concurrency unreserved.
pub const MIN_UNRESERVED: u32 = 100;

/// Running counts per function against the limits. The caller serialises access (a mutex).
#[derive(Debug)]
pub struct Concurrency {
    unreserved_limit: u32,
    unreserved_in_use: u32,
    functions: HashMap<String, FunctionSlot>,
}

#[derive(Debug, Default)]
struct FunctionSlot {
    reserved: Option<u32>,
    in_use: u32,
}

impl Concurrency {
    /// `reserved` lists each function's `ReservedConcurrentExecutions`, `None` when unset.
    pub fn new<'a>(
        account_limit: u32,
        reserved: impl IntoIterator<Item = (&'a str, Option<u32>)>,
    ) -> Result<Self, ConcurrencyError> {
        let functions: HashMap<String, FunctionSlot> = reserved
            .into_iter()
            .map(|(name, reserved)| {
                (
                    name.to_owned(),
                    FunctionSlot {
                        reserved,
                        in_use: 0,
                    },
                )
            })
            .collect();
        let total: u64 = functions
            .values()
            .filter_map(|f| f.reserved)
            .map(u64::from)
            .sum();
        if total > u64::from(account_limit) {
            return Err(ConcurrencyError::OverReserved {
                reserved: total,
                account_limit,
            });
        }
        Ok(Self {
            unreserved_limit: account_limit - total as u32,
            unreserved_in_use: 0,
            functions,
        })
    }

    /// Changes `function`'s reserved concurrency while invocations may be running: what they
    /// hold moves between the shared pool and the function's own, so their releases balance.
    /// The account keeps [`MIN_UNRESERVED`] unreserved (or all of a smaller account limit).
    pub fn set_reserved(
        &mut self,
        function: &str,
        reserved: Option<u32>,
    ) -> Result<(), ConcurrencyError> {
        let account = self.account_limit();
        let others: u64 = self
            .functions
            .iter()
            .filter(|(name, _)| name.as_str() != function)
            .filter_map(|(_, f)| f.reserved)
            .map(u64::from)
            .sum();
        let total = others + u64::from(reserved.unwrap_or(0));
        let minimum = MIN_UNRESERVED.min(account);
        if reserved.is_some() && total + u64::from(minimum) > u64::from(account) {
            return Err(ConcurrencyError::BelowMinimumUnreserved { minimum });
        }
        let slot = self.functions.entry(function.to_owned()).or_default();
        match (slot.reserved, reserved) {
            (None, Some(_)) => {
                self.unreserved_in_use = self.unreserved_in_use.saturating_sub(slot.in_use)
            }
            (Some(_), None) => self.unreserved_in_use += slot.in_use,
            _ => {}
        }
        slot.reserved = reserved;
        self.unreserved_limit = account - total as u32;
        Ok(())
    }

    /// The account limit: what is unreserved plus what functions reserve.
    fn account_limit(&self) -> u32 {
        self.unreserved_limit
            + self
                .functions
                .values()
                .filter_map(|f| f.reserved)
                .sum::<u32>()
    }

    /// A function's reserved concurrency, if it has one.
    pub fn reserved(&self, function: &str) -> Option<u32> {
        self.functions.get(function).and_then(|f| f.reserved)
    }

    /// Takes one execution slot for `function`, or says why it cannot.
    pub fn try_acquire(&mut self, function: &str) -> Result<(), ThrottleReason> {
        let slot = self.functions.entry(function.to_owned()).or_default();
        match slot.reserved {
            Some(limit) if slot.in_use >= limit => {
                Err(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded)
            }
            Some(_) => {
                slot.in_use += 1;
                Ok(())
            }
            None if self.unreserved_in_use >= self.unreserved_limit => {
                Err(ThrottleReason::ConcurrentInvocationLimitExceeded)
            }
            None => {
                slot.in_use += 1;
                self.unreserved_in_use += 1;
                Ok(())
            }
        }
    }

    /// Gives back a slot taken by [`Self::try_acquire`].
    pub fn release(&mut self, function: &str) {
        if let Some(slot) = self.functions.get_mut(function) {
            debug_assert!(slot.in_use > 0, "release without acquire for {function}");
            slot.in_use = slot.in_use.saturating_sub(1);
            if slot.reserved.is_none() {
                self.unreserved_in_use = self.unreserved_in_use.saturating_sub(1);
            }
        }
    }

    /// Executions running now for `function`.
    pub fn in_use(&self, function: &str) -> u32 {
        self.functions.get(function).map_or(0, |s| s.in_use)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ThrottleReason::*;

    #[test]
    fn reserving_while_running_keeps_the_shared_pool_balanced() {
        let mut c = Concurrency::new(200, [("f", None), ("g", None)]).unwrap();
        c.try_acquire("f").unwrap();
        c.try_acquire("f").unwrap();
        c.set_reserved("f", Some(2)).unwrap();
        assert_eq!(
            c.try_acquire("f"),
            Err(ReservedFunctionConcurrentInvocationLimitExceeded)
        );
        c.release("f");
        c.release("f");
        // What f held left the shared pool when it was reserved: g has all 198 of it.
        for _ in 0..198 {
            c.try_acquire("g").unwrap();
        }
        assert_eq!(c.try_acquire("g"), Err(ConcurrentInvocationLimitExceeded));
        c.set_reserved("f", None).unwrap();
        assert_eq!(c.reserved("f"), None);
        assert_eq!(
            c.set_reserved("f", Some(101)),
            Err(ConcurrencyError::BelowMinimumUnreserved { minimum: 100 })
        );
        c.set_reserved("f", Some(100)).unwrap();
    }

    #[test]
    fn reserved_function_is_throttled_at_its_own_limit() {
        let mut c = Concurrency::new(10, [("a", Some(2)), ("b", None)]).unwrap();
        assert_eq!(c.try_acquire("a"), Ok(()));
        assert_eq!(c.try_acquire("a"), Ok(()));
        assert_eq!(
            c.try_acquire("a"),
            Err(ReservedFunctionConcurrentInvocationLimitExceeded)
        );
        c.release("a");
        assert_eq!(c.try_acquire("a"), Ok(()));
    }

    #[test]
    fn reserved_zero_throttles_every_invocation() {
        let mut c = Concurrency::new(10, [("off", Some(0))]).unwrap();
        assert_eq!(
            c.try_acquire("off"),
            Err(ReservedFunctionConcurrentInvocationLimitExceeded)
        );
    }

    #[test]
    fn unreserved_functions_share_what_reservations_leave() {
        let mut c = Concurrency::new(3, [("r", Some(2)), ("x", None), ("y", None)]).unwrap();
        assert_eq!(c.try_acquire("x"), Ok(()));
        assert_eq!(c.try_acquire("y"), Err(ConcurrentInvocationLimitExceeded));
        // Reserved capacity stays available to its owner while the shared pool is full.
        assert_eq!(c.try_acquire("r"), Ok(()));
        c.release("x");
        assert_eq!(c.try_acquire("y"), Ok(()));
        assert_eq!(c.in_use("y"), 1);
    }

    #[test]
    fn reservations_above_the_account_limit_are_refused() {
        let err = Concurrency::new(5, [("a", Some(3)), ("b", Some(3))]).unwrap_err();
        assert_eq!(
            err,
            ConcurrencyError::OverReserved {
                reserved: 6,
                account_limit: 5
            }
        );
    }
}
