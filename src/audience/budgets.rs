//! Budgets on confirmation mails, so that nobody can use the sign-up form to mail-bomb
//! strangers: at most so many an hour per client network (an IPv4 address or an IPv6
//! /64), per recipient domain, and in total. They are counted in the database, in the
//! sign-up's own transaction, so they hold across instances; over a budget the sign-up
//! stores nothing, sends nothing, and is answered 429. The rule is here; both stores
//! call it.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// Which budget a sign-up would overrun.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BudgetScope {
    Client,
    Domain,
    Total,
}

impl BudgetScope {
    pub const ALL: [BudgetScope; 3] =
        [BudgetScope::Total, BudgetScope::Domain, BudgetScope::Client];

    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Client => "client",
            BudgetScope::Domain => "domain",
            BudgetScope::Total => "total",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Confirmation mails an hour, at most (0: no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    pub per_client: u32,
    pub per_domain: u32,
    pub total: u32,
}

impl Default for Budgets {
    /// An office behind one address signs up a few people; a big webmail domain may
    /// see a few dozen an hour after a mailing; a quarterly newsletter rarely sees
    /// hundreds an hour in all.
    fn default() -> Self {
        Self {
            per_client: 20,
            per_domain: 100,
            total: 500,
        }
    }
}

impl Budgets {
    fn limit(&self, scope: BudgetScope) -> u32 {
        match scope {
            BudgetScope::Client => self.per_client,
            BudgetScope::Domain => self.per_domain,
            BudgetScope::Total => self.total,
        }
    }

    /// The first budget that another mail would overrun, given the mails each scope
    /// has sent this hour.
    pub fn overrun(&self, used: &[(BudgetScope, i64)]) -> Option<BudgetScope> {
        used.iter()
            .find(|(scope, mails)| {
                let limit = self.limit(*scope);
                limit > 0 && *mails >= i64::from(limit)
            })
            .map(|(scope, _)| *scope)
    }
}

/// Sign-ups each budget turned away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Refusals {
    pub client: i64,
    pub domain: i64,
    pub total: i64,
}

impl Refusals {
    /// From (scope, count) rows, as both stores read them.
    pub fn from_rows(rows: Vec<(String, i64)>) -> anyhow::Result<Self> {
        let mut refusals = Self::default();
        for (scope, count) in rows {
            let scope = BudgetScope::parse(&scope)
                .ok_or_else(|| anyhow::anyhow!("An unknown budget scope {scope:?}"))?;
            *match scope {
                BudgetScope::Client => &mut refusals.client,
                BudgetScope::Domain => &mut refusals.domain,
                BudgetScope::Total => &mut refusals.total,
            } = count;
        }
        Ok(refusals)
    }
}

/// What one sign-up is counted under: its keys, and the hour it falls in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetKeys {
    /// `client_network` of the client's address.
    pub client: String,
    /// The recipient's domain, lower-case.
    pub domain: String,
    pub window_start: DateTime<Utc>,
}

impl BudgetKeys {
    pub fn new(client: String, email: &str, now: DateTime<Utc>) -> Self {
        let domain = email.rsplit_once('@').map_or("", |(_, d)| d).to_lowercase();
        Self {
            client,
            domain,
            window_start: now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now),
        }
    }

    /// The key a budget counts this sign-up under.
    pub fn key(&self, scope: BudgetScope) -> &str {
        match scope {
            BudgetScope::Total => "",
            BudgetScope::Domain => &self.domain,
            BudgetScope::Client => &self.client,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_overrun_once_its_mails_reach_the_limit() {
        let budgets = Budgets {
            per_client: 2,
            per_domain: 5,
            total: 0,
        };
        let used = |c, d, t| {
            vec![
                (BudgetScope::Total, t),
                (BudgetScope::Domain, d),
                (BudgetScope::Client, c),
            ]
        };
        assert_eq!(
            budgets.overrun(&used(1, 4, 1_000_000)),
            None,
            "0 is no limit"
        );
        assert_eq!(budgets.overrun(&used(2, 0, 0)), Some(BudgetScope::Client));
        assert_eq!(budgets.overrun(&used(0, 5, 0)), Some(BudgetScope::Domain));
    }

    #[test]
    fn keys_name_the_domain_and_the_hour() {
        let now = "2026-12-01T10:59:59.900Z".parse().unwrap();
        let keys = BudgetKeys::new("192.0.2.1".into(), "Jo@Example.ORG", now);
        assert_eq!(keys.domain, "example.org");
        assert_eq!(keys.window_start.to_rfc3339(), "2026-12-01T10:00:00+00:00");
        for scope in BudgetScope::ALL {
            assert_eq!(BudgetScope::parse(scope.as_str()), Some(scope));
        }
    }
}
