//! Fleet-wide vendor quotas: every call to a vendor's API, from any Lambda,
//! first takes a slot from the vendor's shared budget in DynamoDB.
//!
//! Each documented window ("100 per minute", "10,000 per day", app-wide or
//! per user) is paced with GCRA (the algorithm governor runs in-process),
//! its state one `tat` (theoretical arrival time) item changed by a single
//! conditional update. Pacing instead of counting per window keeps any span
//! of the window's length below the limit wherever the vendor's window
//! boundaries fall: a burst of 2 % after a quiet spell, then a steady rate
//! that leaves a margin of at least two calls (1 % of large limits) for
//! calls the network delays or bunches. Under a backlog that is about 96 %
//! of the quota, and never more than `limit - 2` calls in any window-long
//! span (one margin slot absorbs the schedule's lag, see [`Pace::slack`]).
//!
//! A sync job books its slots in batches: one update takes `k` slots in
//! a row (1, 1, 2, 4, … as the job keeps calling, up to [`MAX_GRANT`] and
//! a short span of time), and the job's calls go out no faster than the
//! slots, paced in-process by governor. The tail a job did not use is
//! given back when no one booked after it, so a job touches the
//! schedule's item a few times rather than once per call, and the slots
//! it holds are the ones a call-by-call job would have taken.
//!
//! Live syncs come before backfill: a live call may reserve a slot up to
//! [`LIVE_HORIZON`] ahead and sleeps until it, and marks the schedule live
//! until a short hold after its slot ([`Pace::live_hold`]); backfill only takes a slot that is
//! free now on a schedule with no live mark ahead. Under a backfill backlog
//! (or a user's manual sync of history, which runs as backfill), a live
//! job's calls therefore follow each other at the quota's pace, as with no
//! backlog, and backfill waits for them.
//!
//! No user spends a day's quota for everyone: of each day-long app window
//! (Strava's 1,000 a day), the calls made for one user may take at most
//! `CONNECTOR_USER_DAILY_SHARE` percent a day (default 10), counted in a
//! token bucket per user and vendor that refills over the day. A user past
//! it waits for the bucket; the others' calls go on.

use crate::aws::store::ephemeral::{Bucket, EphemeralStore, LiveMark, TatMove, TatStep};
use crate::domain::config::bounded;
use crate::domain::env::Env;
use crate::domain::error::{Error, Result};
use crate::domain::job::Priority;
use crate::domain::vendor::Vendor;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How far ahead a live call may reserve its slot (and sleep until it).
pub const LIVE_HORIZON: Duration = Duration::from_secs(5);
/// How long after its slot a live call keeps backfill off the schedule, at
/// most: time for its job's next call to come back for the next slot, so a
/// live job's calls follow each other as with no backlog. Slots in the hold
/// after a job's last call go unused, so it is two slots where slots are
/// slow, [`LIVE_HOLD_MIN`] where they are fast (a vendor answering slower
/// than the hold lets backfill take a slot between the live calls again).
pub const LIVE_HOLD: Duration = Duration::from_secs(1);
/// The least hold after a live call's slot.
pub const LIVE_HOLD_MIN: Duration = Duration::from_millis(300);
/// In-process waiting the calls of a budget with no deadline (outside a
/// sync job: connect, refresh) may do in all.
pub const MAX_JOB_WAIT: Duration = Duration::from_secs(5);
/// Most slots one booking of a job takes.
pub const MAX_GRANT: u32 = 16;
/// How much of the schedule one live booking may span: a job's next calls
/// come within it, so little is booked that goes unused.
const LIVE_GRANT_SPAN: Duration = Duration::from_secs(1);
/// The same for backfill, short: a live call arriving waits behind it.
const BACKFILL_GRANT_SPAN: Duration = Duration::from_millis(250);
/// The share of a window's limit that may go out at once after a quiet spell.
const BURST_SHARE: f64 = 0.02;
/// The share (percent) of each day-long app window that the calls made for
/// one user may take in a day when `CONNECTOR_USER_DAILY_SHARE` is unset.
pub const DEFAULT_USER_DAILY_SHARE: u32 = 10;
/// App windows this long or longer are shared out per user.
const SHARED_WINDOW: Duration = Duration::from_secs(86_400);

/// Whose calls a window counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every call the app makes to the vendor.
    App,
    /// Calls on behalf of one user.
    User,
}

/// One documented limit: `limit` calls per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaWindow {
    /// Calls allowed per window.
    pub limit: u32,
    /// The window's length.
    pub per: Duration,
    /// Whose calls the window counts.
    pub scope: Scope,
}

impl QuotaWindow {
    /// `limit` calls per `secs` for the whole app.
    pub const fn app(limit: u32, secs: u64) -> Self {
        Self {
            limit,
            per: Duration::from_secs(secs),
            scope: Scope::App,
        }
    }

    /// `limit` calls per `secs` for each user.
    pub const fn user(limit: u32, secs: u64) -> Self {
        Self {
            limit,
            per: Duration::from_secs(secs),
            scope: Scope::User,
        }
    }
}

/// Parses `CONNECTOR_<VENDOR>_QUOTA`: comma-separated `limit/seconds`,
/// each optionally prefixed `user:` for a per-user window
/// (`user:300/60,120000/60`), or `off`.
pub fn parse_windows(spec: &str) -> Result<Vec<QuotaWindow>, String> {
    if spec.trim().eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|part| {
            let part = part.trim();
            let (scope, rest) = match part.strip_prefix("user:") {
                Some(r) => (Scope::User, r),
                None => (Scope::App, part),
            };
            let (limit, secs) = rest
                .split_once('/')
                .ok_or_else(|| format!("`{part}` is not limit/seconds"))?;
            let limit: u32 = limit
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: the limit is not a whole number"))?;
            let secs: u64 = secs
                .trim()
                .trim_end_matches('s')
                .parse()
                .map_err(|_| format!("`{part}`: the seconds are not a whole number"))?;
            if limit < 10 || secs == 0 {
                return Err(format!(
                    "`{part}`: needs at least 10 calls over at least 1 s"
                ));
            }
            Ok(QuotaWindow {
                limit,
                per: Duration::from_secs(secs),
                scope,
            })
        })
        .collect()
}

/// A window's GCRA parameters, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Time between slots.
    pub interval: i64,
    /// How far ahead of now the schedule may run and a call still go at
    /// once: (burst - 1) slots.
    pub tolerance: i64,
    /// How far behind now the schedule may lag and still be moved on by
    /// one slot (rather than restarted from now): concurrent callers then
    /// all add a slot instead of racing to restart it. Taken from the
    /// margin, so it never lets a window see its limit.
    pub slack: i64,
}

impl Pace {
    /// The GCRA pace for `w`: a small burst, and a margin of slots left unused.
    pub fn of(w: &QuotaWindow) -> Self {
        let limit = i64::from(w.limit.max(2));
        let burst = ((limit as f64 * BURST_SHARE) as i64).max(1);
        // Slots left unused so that calls arriving late or bunched by the
        // network still fit the vendor's count.
        let margin = (limit / 100).max(2);
        let slots = (limit - burst - margin).max(1);
        // Rounded up: a slot a microsecond early would let one call too many
        // into a window.
        let per = w.per.as_micros() as i64;
        let interval = ((per + slots - 1) / slots).max(1);
        Self {
            interval,
            tolerance: (burst - 1) * interval,
            slack: ((margin - 1) * interval).clamp(interval, interval.max(1_000_000)),
        }
    }

    /// How long after its slot a live call keeps backfill off the
    /// schedule (µs): two slots, within [`LIVE_HOLD_MIN`]..=[`LIVE_HOLD`].
    pub fn live_hold(&self) -> i64 {
        (2 * self.interval).clamp(
            LIVE_HOLD_MIN.as_micros() as i64,
            LIVE_HOLD.as_micros() as i64,
        )
    }

    /// The latest schedule (`tat`) a call of `priority` may still join,
    /// given how long it may sleep for its slot. Live calls may book up to
    /// [`LIVE_HORIZON`] ahead; backfill only the next two slots, which
    /// keeps the schedule from running dry (no slot lost between pollers)
    /// and puts a live call at most two slots behind the backlog.
    pub fn admit_below(&self, priority: Priority, max_wait: Duration) -> i64 {
        let horizon = match priority {
            Priority::Live => LIVE_HORIZON.as_micros() as i64,
            Priority::Backfill => 2 * self.interval,
        };
        self.tolerance + horizon.min(max_wait.as_micros() as i64)
    }
}

/// What the schedule says about a booking at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Taken: the first call goes after sleeping this long (µs), the next
    /// ones an interval apart. The schedule moves to `tat`.
    Go {
        /// How long to sleep before the first call, µs.
        sleep: i64,
        /// The window's new theoretical arrival time, unix µs.
        tat: i64,
    },
    /// No slot for this priority yet; one may be in this long (µs).
    Wait(i64),
}

/// GCRA with reservations: the reference model of what [`FleetQuota`]
/// does with one conditional update per window, booking `slots` in a row.
pub fn decide(
    tat: Option<i64>,
    now: i64,
    pace: Pace,
    priority: Priority,
    max_wait: Duration,
    slots: u32,
) -> Slot {
    let floor = now - pace.slack;
    let tat = tat.map_or(floor, |t| t.max(floor));
    let limit = pace.admit_below(priority, max_wait);
    if tat - now > limit {
        return Slot::Wait(tat - now - limit);
    }
    Slot::Go {
        sleep: (tat - pace.tolerance - now).max(0),
        tat: tat + i64::from(slots.max(1)) * pace.interval,
    }
}

/// Refused by the fleet's budget for longer than a job may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    /// How long to wait before trying again.
    pub retry_after: Duration,
}

/// The per-vendor windows and the table their schedules live in.
pub struct FleetQuota {
    store: EphemeralStore,
    windows: HashMap<Vendor, Vec<QuotaWindow>>,
    /// Percent of each day-long app window one user may take a day (100: no limit).
    user_daily_share: u32,
    /// The last schedule seen per key: picks which update to try first.
    seen: std::sync::Mutex<HashMap<String, i64>>,
}

impl FleetQuota {
    /// The fleet quota of every vendor: its `documented` windows, or those
    /// `CONNECTOR_<VENDOR>_QUOTA` sets instead.
    pub fn from_env(
        store: EphemeralStore,
        env: &Env,
        documented: impl Fn(Vendor) -> &'static [QuotaWindow],
    ) -> Result<Self> {
        let mut windows = HashMap::new();
        for vendor in Vendor::ALL {
            let var = format!("CONNECTOR_{}_QUOTA", vendor.env_name());
            let ws = match env.get(&var).filter(|v| !v.trim().is_empty()) {
                Some(spec) => {
                    parse_windows(&spec).map_err(|e| Error::Config(format!("{var}: {e}")))?
                }
                None => documented(vendor).to_vec(),
            };
            windows.insert(vendor, ws);
        }
        let user_daily_share = bounded(
            env,
            "CONNECTOR_USER_DAILY_SHARE",
            DEFAULT_USER_DAILY_SHARE,
            1,
            100,
        )?;
        Ok(Self {
            store,
            windows,
            user_daily_share,
            seen: Default::default(),
        })
    }

    /// The windows in force for `vendor`; empty when its quota is off.
    pub fn windows(&self, vendor: Vendor) -> &[QuotaWindow] {
        self.windows.get(&vendor).map_or(&[], Vec::as_slice)
    }

    /// How many slots a job's next booking asks for: as many as it has
    /// called so far (at least one), within [`MAX_GRANT`], the span one
    /// booking may cover, and the time `left` to its deadline.
    pub fn grant_size(
        &self,
        vendor: Vendor,
        priority: Priority,
        called: u32,
        left: Duration,
    ) -> u32 {
        let Some(interval) = self
            .windows(vendor)
            .iter()
            .map(|w| Pace::of(w).interval)
            .max()
        else {
            return 1;
        };
        let span = match priority {
            Priority::Live => LIVE_GRANT_SPAN,
            Priority::Backfill => BACKFILL_GRANT_SPAN,
        };
        let fits =
            |d: Duration| (d.as_micros() as i64 / interval).clamp(1, i64::from(MAX_GRANT)) as u32;
        called.clamp(1, MAX_GRANT).min(fits(span)).min(fits(left))
    }

    /// Takes a slot in every window of `vendor` for one call, sleeping until
    /// it when that is short: how long it waited, or `Ok(Err(_))` when the
    /// wait is longer than `max_wait` (the caller gives the job back to the queue).
    pub async fn admit(
        &self,
        vendor: Vendor,
        user: Option<&str>,
        priority: Priority,
        max_wait: Duration,
    ) -> Result<Result<Duration, OverQuota>> {
        let grant = self.book(vendor, user, priority, max_wait, 1).await?;
        Ok(grant.map(|g| g.waited))
    }

    /// Books `want` slots in a row in every window of `vendor`, sleeping
    /// until the first when that is short; `Ok(Err(_))` when the wait is
    /// longer than `max_wait`. The user's daily share may allow fewer calls than booked
    /// ([`Grant::left`]); [`FleetQuota::release`] gives back what goes unused.
    pub async fn book(
        &self,
        vendor: Vendor,
        user: Option<&str>,
        priority: Priority,
        max_wait: Duration,
        want: u32,
    ) -> Result<Result<Grant, OverQuota>> {
        let want = want.max(1);
        let mut waited = Duration::ZERO;
        loop {
            let mut booked: Vec<Booked> = Vec::new();
            let mut sleep = 0i64;
            let mut refused = None;
            for w in self.windows(vendor) {
                let key = match (w.scope, user) {
                    (Scope::App, _) => format!("quota#{vendor}#app#{}", w.per.as_secs()),
                    (Scope::User, Some(u)) => {
                        format!("quota#{vendor}#user#{u}#{}", w.per.as_secs())
                    }
                    // Calls outside a user's sync count app-wide only.
                    (Scope::User, None) => continue,
                };
                let pace = Pace::of(w);
                let call = Call {
                    pace,
                    priority,
                    max_wait: max_wait.saturating_sub(waited),
                    slots: want,
                };
                match self.take(&key, call, user, w.per).await {
                    Ok(Slot::Go { sleep: s, tat }) => {
                        sleep = sleep.max(s);
                        booked.push(Booked {
                            key,
                            pace,
                            end: tat,
                        });
                    }
                    Ok(Slot::Wait(us)) => {
                        refused = Some(Duration::from_micros(us as u64));
                        break;
                    }
                    Err(e) => {
                        self.return_slots(&booked, want, priority).await;
                        return Err(e);
                    }
                }
            }
            if let Some(wait) = refused {
                self.return_slots(&booked, want, priority).await;
                if waited + wait > max_wait {
                    return Ok(Err(OverQuota {
                        retry_after: wait.max(Duration::from_secs(1)),
                    }));
                }
                tokio::time::sleep(wait).await;
                waited += wait;
                continue;
            }
            let shares = match user {
                Some(u) => self.take_user_share(vendor, u, want).await,
                None => Ok(Ok(Vec::new())),
            };
            let shares = match shares {
                Ok(Ok(shares)) => shares,
                Ok(Err(wait_secs)) => {
                    self.return_slots(&booked, want, priority).await;
                    return Ok(Err(OverQuota {
                        retry_after: Duration::from_secs(wait_secs),
                    }));
                }
                Err(e) => {
                    self.return_slots(&booked, want, priority).await;
                    return Err(e);
                }
            };
            let usable = shares.iter().map(|s| s.1).min().unwrap_or(want);
            let sleep = Duration::from_micros(sleep as u64);
            if !sleep.is_zero() {
                tokio::time::sleep(sleep).await;
            }
            // The booking's calls after this one go no sooner than their
            // slots: those already due at once, then one a slot apart
            // (the slowest window's), as a governor limiter with that burst.
            let at = now_micros();
            let due = booked
                .iter()
                .map(|b| due_at(b.first(want), at, b.pace, want))
                .min()
                .unwrap_or(want);
            let pacer = match booked.iter().map(|b| b.pace.interval).max() {
                Some(interval) if usable > 1 && due < usable => {
                    let period = Duration::from_micros(interval.max(1) as u64);
                    let burst = std::num::NonZeroU32::new(due).expect("at least one is due");
                    let pacer = governor::RateLimiter::direct(
                        governor::Quota::with_period(period)
                            .expect("a non-zero period")
                            .allow_burst(burst),
                    );
                    // This call takes the first.
                    let _ = pacer.check();
                    Some(Arc::new(pacer))
                }
                _ => None,
            };
            return Ok(Ok(Grant {
                waited: waited + sleep,
                booked,
                shares,
                slots: want,
                usable,
                used: 1,
                priority,
                pacer,
            }));
        }
    }

    /// Gives back what `grant` booked and its calls did not use: the
    /// schedules' tails where no one booked after them, and the user's
    /// share of the day.
    pub async fn release(&self, grant: Grant) {
        let unused = grant.slots.saturating_sub(grant.used);
        if unused > 0 {
            self.return_slots(&grant.booked, unused, grant.priority)
                .await;
        }
        let unused = grant.usable.saturating_sub(grant.used);
        if unused > 0 {
            self.return_shares(grant.shares.iter().map(|(key, _)| (key.as_str(), unused)))
                .await;
        }
    }

    /// Puts calls taken from users' shares and not made back in their
    /// buckets: `(bucket, calls)`.
    async fn return_shares(&self, shares: impl Iterator<Item = (&str, u32)>) {
        for (key, calls) in shares {
            if let Err(e) = self.store.give_back_tokens(key, calls).await {
                // Harmless: the user's share is only a little smaller today.
                tracing::debug!(error = %e, "could not give a user's quota share back");
            }
        }
    }

    /// Gives the last `slots` of each booking back, where no one booked
    /// after it. Unused slots stay unused otherwise: handing them out
    /// twice could let a window see more than its limit.
    async fn return_slots(&self, booked: &[Booked], slots: u32, priority: Priority) {
        let live = priority == Priority::Live;
        for b in booked {
            let tail = i64::from(slots) * b.pace.interval;
            match self.store.return_tat_tail(&b.key, tail, b.end, live).await {
                Ok(true) => {
                    let mut seen = self.seen.lock().expect("quota cache");
                    if seen.get(&b.key) == Some(&b.end) {
                        seen.insert(b.key.clone(), b.end - tail);
                    }
                }
                Ok(false) => {}
                // Harmless: the slots stay used, so the fleet is only a little slower.
                Err(e) => tracing::debug!(error = %e, "could not give quota slots back"),
            }
        }
    }

    /// Takes `want` calls from `user`'s share of each day-long app window
    /// of `vendor`, or as many as are left: the buckets and how many each
    /// gave, or `Err(secs)` when a share is spent, with the seconds until
    /// it has a call again.
    async fn take_user_share(
        &self,
        vendor: Vendor,
        user: &str,
        want: u32,
    ) -> Result<Result<Vec<(String, u32)>, u64>> {
        let mut taken = Vec::new();
        if self.user_daily_share >= 100 {
            return Ok(Ok(taken));
        }
        for w in self.windows(vendor) {
            if w.scope != Scope::App || w.per < SHARED_WINDOW {
                continue;
            }
            let share = (u64::from(w.limit) * u64::from(self.user_daily_share) / 100).max(1);
            let bucket = Bucket {
                capacity: share as f64,
                refill_per_sec: share as f64 / w.per.as_secs_f64(),
            };
            let key = format!("quotashare#{vendor}#{}#{user}", w.per.as_secs());
            match self.store.take_tokens(&key, user, bucket, want).await {
                Ok(Ok(n)) => taken.push((key, n)),
                spent => {
                    self.return_shares(taken.iter().map(|(key, n)| (key.as_str(), *n)))
                        .await;
                    if let Ok(Err(wait)) = spent {
                        tracing::info!(user_id = %user, %vendor, retry_after_secs = wait, "the user's daily share of the vendor quota is spent");
                    }
                    return spent.map(|r| r.map(|_| Vec::new()));
                }
            }
        }
        Ok(Ok(taken))
    }

    /// One window's slot: `decide` as a conditional update of its `tat`.
    async fn take(&self, key: &str, call: Call, user: Option<&str>, per: Duration) -> Result<Slot> {
        // Under load the schedule runs ahead of now (one update moves it);
        // after a quiet spell it is in the past (restart it from now).
        let last_seen = self.seen.lock().expect("quota cache").get(key).copied();
        let mut busy = last_seen.is_some_and(|t| t >= now_micros() - call.pace.slack);
        let slot = self.update(key, call, user, per, &mut busy).await;
        if let Ok(Slot::Go { tat, .. }) = slot {
            let mut seen = self.seen.lock().expect("quota cache");
            if seen.len() > 10_000 {
                seen.clear();
            }
            seen.insert(key.to_string(), tat);
        }
        slot
    }

    async fn update(
        &self,
        key: &str,
        call: Call,
        user: Option<&str>,
        per: Duration,
        busy: &mut bool,
    ) -> Result<Slot> {
        let Call {
            pace,
            priority,
            max_wait,
            slots,
        } = call;
        let booked = i64::from(slots) * pace.interval;
        // Each round at least one contender moves the schedule on, so a
        // few dozen rounds cover any realistic crowd on one key.
        for _ in 0..32 {
            let now = now_micros();
            let step = TatStep {
                floor: now - pace.slack,
                expires_at: (now / 1_000_000) + 2 * per.as_secs() as i64 + 60,
                owner: match (scope_of(key), user) {
                    (Scope::User, Some(u)) => Some(u),
                    _ => None,
                },
                live: match priority {
                    Priority::Live => LiveMark::Hold(pace.live_hold()),
                    Priority::Backfill => LiveMark::YieldTo(now),
                },
            };
            let moved = if *busy {
                let limit = now + pace.admit_below(priority, max_wait);
                // The mark is set from the first slot: it covers the last.
                let step = match step.live {
                    LiveMark::Hold(hold) => TatStep {
                        live: LiveMark::Hold(hold + booked - pace.interval),
                        ..step
                    },
                    LiveMark::YieldTo(_) => step,
                };
                self.store.advance_tat(key, booked, limit, step).await?
            } else {
                let start = now - pace.slack + booked;
                self.store.restart_tat(key, start, step).await?
            };
            match moved {
                TatMove::Moved { old } => {
                    let old = old.filter(|_| *busy);
                    return Ok(decide(old, now, pace, priority, max_wait, slots));
                }
                TatMove::Refused {
                    live_until: Some(live),
                    ..
                } if priority == Priority::Backfill && live >= now => {
                    return Ok(Slot::Wait((live - now).max(1)));
                }
                TatMove::Refused { current, .. } => match current {
                    Some(old) if old >= now - pace.slack => {
                        if let Slot::Wait(us) = decide(Some(old), now, pace, priority, max_wait, 1)
                        {
                            return Ok(Slot::Wait(us));
                        }
                        *busy = true;
                    }
                    _ => *busy = false,
                },
            }
        }
        Err(Error::Storage("quota contention: retry".into()))
    }
}

/// One booking's ask of one window.
#[derive(Clone, Copy)]
struct Call {
    pace: Pace,
    priority: Priority,
    max_wait: Duration,
    slots: u32,
}

/// Slots booked in one window's schedule.
struct Booked {
    key: String,
    pace: Pace,
    /// The schedule's `tat` right after the booking.
    end: i64,
}

impl Booked {
    /// The first of the booking's `slots` (unix µs).
    fn first(&self, slots: u32) -> i64 {
        self.end - i64::from(slots) * self.pace.interval
    }
}

/// How many of a booking's `slots`, the first at `first` (µs), may go at
/// once at `at` (at least the first, which its sleep made due): each slot
/// may go `pace.tolerance` before its time. The rest go an interval apart.
pub fn due_at(first: i64, at: i64, pace: Pace, slots: u32) -> u32 {
    ((at + pace.tolerance - first) / pace.interval + 1).clamp(1, i64::from(slots.max(1))) as u32
}

/// Slots a booking took for a job's calls, the first of them used.
pub struct Grant {
    /// How long the booking waited for its first slot.
    pub waited: Duration,
    booked: Vec<Booked>,
    /// The user's share buckets and how many calls each gave.
    shares: Vec<(String, u32)>,
    /// Slots booked in each window.
    pub(super) slots: u32,
    /// Of them, the calls the user's share allows.
    usable: u32,
    pub(super) used: u32,
    priority: Priority,
    /// Paces the calls after the first to the slots' interval.
    pub(super) pacer: Option<Arc<governor::DefaultDirectRateLimiter>>,
}

impl Grant {
    /// Calls the booking still holds slots for.
    pub fn left(&self) -> u32 {
        self.usable.saturating_sub(self.used)
    }
}

fn scope_of(key: &str) -> Scope {
    if key.contains("#user#") {
        Scope::User
    } else {
        Scope::App
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn windows_parse_and_bad_specs_say_why() {
        assert_eq!(
            parse_windows("user:300/60, 120000/60s").unwrap(),
            vec![QuotaWindow::user(300, 60), QuotaWindow::app(120_000, 60)]
        );
        assert_eq!(parse_windows("off").unwrap(), vec![]);
        assert!(parse_windows("100").unwrap_err().contains("limit/seconds"));
        assert!(parse_windows("x/60").unwrap_err().contains("limit"));
        assert!(parse_windows("9/60").unwrap_err().contains("at least 10"));
    }

    #[test]
    fn whoop_paces_96_a_minute_after_a_burst_of_2() {
        let p = Pace::of(&QuotaWindow::app(100, 60));
        assert_eq!(p.interval, 60_000_000 / 96);
        assert_eq!(p.tolerance, p.interval);
        assert_eq!(p.slack, p.interval);
    }

    /// Sends `arrivals` (µs, one call each) through the model and returns
    /// when each admitted call goes out.
    fn run(pace: Pace, arrivals: &[(i64, Priority)]) -> Vec<(i64, Priority)> {
        let bookings: Vec<_> = arrivals.iter().map(|&(t, p)| (t, p, 1, 1)).collect();
        run_bookings(pace, &bookings)
    }

    /// The model with bookings: each arrival `(time µs, priority, slots,
    /// used)` books `slots` in a row and sends `used` of them as fast as
    /// its pacer lets (an interval apart from the first), then gives the
    /// tail back if no one booked after it, as [`FleetQuota::release`] does.
    fn run_bookings(pace: Pace, arrivals: &[(i64, Priority, u32, u32)]) -> Vec<(i64, Priority)> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut tat = None;
        let mut sent = Vec::new();
        let mut seq = arrivals.len();
        // (time, order, Some(arrival) to book | None to give `tail` back
        // from `end`): a refused booking retries when told.
        type Step = (i64, usize, Option<usize>, i64, i64);
        let mut pending: BinaryHeap<Reverse<Step>> = arrivals
            .iter()
            .enumerate()
            .map(|(i, a)| Reverse((a.0, i, Some(i), 0, 0)))
            .collect();
        while let Some(Reverse((at, _, book, end, tail))) = pending.pop() {
            let Some(i) = book else {
                if tat == Some(end) {
                    tat = Some(end - tail);
                }
                continue;
            };
            let (_, prio, slots, used) = arrivals[i];
            match decide(tat, at, pace, prio, Duration::from_secs(10), slots) {
                Slot::Go { sleep, tat: end } => {
                    tat = Some(end);
                    // As fast as the pacer lets: the due slots at once,
                    // then one an interval apart.
                    let go = at + sleep;
                    let due = due_at(end - i64::from(slots) * pace.interval, go, pace, slots);
                    let mut last = go;
                    for j in 0..used {
                        last = go + i64::from(j.saturating_sub(due - 1)) * pace.interval;
                        sent.push((last, prio));
                    }
                    let tail = i64::from(slots - used) * pace.interval;
                    seq += 1;
                    pending.push(Reverse((last + 1, seq, None, end, tail)));
                }
                Slot::Wait(us) => pending.push(Reverse((at + us, i, Some(i), 0, 0))),
            }
        }
        sent
    }

    /// No window-long span holds more than the limit less the margin.
    fn within_limit(sent: &[(i64, Priority)], w: &QuotaWindow) -> Result<(), TestCaseError> {
        let mut sent: Vec<i64> = sent.iter().map(|s| s.0).collect();
        sent.sort();
        let span = w.per.as_micros() as i64;
        let mut lo = 0;
        for hi in 0..sent.len() {
            while sent[hi] - sent[lo] >= span {
                lo += 1;
            }
            let most = w.limit as usize - 2;
            prop_assert!(
                hi - lo < most,
                "{} calls within {} s, limit {}",
                hi - lo + 1,
                w.per.as_secs(),
                w.limit
            );
        }
        Ok(())
    }

    fn priority(live: bool) -> Priority {
        if live {
            Priority::Live
        } else {
            Priority::Backfill
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Wherever the vendor's window falls, it never sees more than its limit.
        #[test]
        fn no_window_long_span_exceeds_the_limit(
            limit in 10u32..400,
            secs in 1u64..120,
            arrivals in proptest::collection::vec((0i64..200_000_000, any::<bool>()), 1..600),
        ) {
            let w = QuotaWindow::app(limit, secs);
            let calls: Vec<_> = arrivals.iter().map(|&(t, live)| (t, priority(live))).collect();
            within_limit(&run(Pace::of(&w), &calls), &w)?;
        }

        /// The same with jobs booking several slots at once, sending some
        /// of them paced, and giving the rest back.
        #[test]
        fn booked_batches_keep_every_span_within_the_limit(
            limit in 10u32..400,
            secs in 1u64..120,
            arrivals in proptest::collection::vec(
                (0i64..200_000_000, any::<bool>(), 1..=MAX_GRANT, 0.0f64..=1.0),
                1..300,
            ),
        ) {
            let w = QuotaWindow::app(limit, secs);
            let bookings: Vec<_> = arrivals
                .iter()
                .map(|&(t, live, k, share)| {
                    let used = ((f64::from(k) * share).ceil() as u32).clamp(1, k);
                    (t, priority(live), k, used)
                })
                .collect();
            within_limit(&run_bookings(Pace::of(&w), &bookings), &w)?;
        }
    }

    #[test]
    fn an_unused_tail_goes_back_to_the_schedule_when_no_one_booked_after() {
        let pace = Pace::of(&QuotaWindow::app(600, 60));
        // A job books 8 slots and uses 3; the next arrives after it ended.
        let sent = run_bookings(
            pace,
            &[
                (0, Priority::Live, 8, 3),
                (10 * pace.interval, Priority::Live, 1, 1),
            ],
        );
        // Without the give-back the second call would wait for slot 8.
        assert_eq!(sent.len(), 4);
        assert!(sent[3].0 <= 10 * pace.interval, "{sent:?}");
    }

    #[test]
    fn a_booking_goes_at_once_on_a_quiet_schedule_and_a_slot_apart_on_a_busy_one() {
        let pace = Pace::of(&QuotaWindow::app(5_000, 300));
        let now = 1_000_000_000_000;
        // Restarted after a quiet spell: within the burst, all due now.
        assert_eq!(due_at(now - pace.slack, now, pace, 16), 16);
        // Booked behind a backlog, woken at its first slot: that one only.
        let first = now + 200 * pace.interval;
        assert_eq!(due_at(first, first - pace.tolerance, pace, 16), 1);
    }

    #[test]
    fn grants_grow_with_the_calls_a_job_made_within_their_span() {
        let quota = |spec: &str| FleetQuota {
            store: EphemeralStore::new(
                aws_sdk_dynamodb::Client::from_conf(
                    aws_sdk_dynamodb::Config::builder()
                        .behavior_version_latest()
                        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                        .build(),
                ),
                "unused".into(),
            ),
            windows: HashMap::from([(Vendor::Oura, parse_windows(spec).unwrap())]),
            user_daily_share: 100,
            seen: Default::default(),
        };
        let oura = quota("5000/300");
        let size = |called, p| oura.grant_size(Vendor::Oura, p, called, Duration::from_secs(60));
        let live: Vec<u32> = [0, 1, 2, 3, 4, 8, 16, 40]
            .iter()
            .map(|&c| size(c, Priority::Live))
            .collect();
        assert_eq!(live, [1, 1, 2, 3, 4, 8, 16, 16]);
        // Oura's 62 ms slots: four fit backfill's 250 ms.
        assert_eq!(size(40, Priority::Backfill), 4);
        // A deadline 100 ms away: one slot.
        assert_eq!(
            oura.grant_size(Vendor::Oura, Priority::Live, 40, Duration::from_millis(100)),
            1
        );
        // WHOOP's 625 ms slots: one call per booking, as before.
        let whoop = quota("100/60");
        assert_eq!(
            whoop.grant_size(Vendor::Oura, Priority::Live, 40, Duration::from_secs(60)),
            1
        );
    }

    #[test]
    fn a_backlog_uses_nearly_all_of_the_quota() {
        let w = QuotaWindow::app(100, 60);
        let pace = Pace::of(&w);
        // 2,000 backfill calls waiting at t = 0, ten minutes of quota.
        let calls = vec![(0, Priority::Backfill); 2_000];
        let sent = run(pace, &calls);
        let in_ten_minutes = sent.iter().filter(|s| s.0 < 600_000_000).count();
        assert!(in_ten_minutes >= 950, "{in_ten_minutes} of 1000");
        assert!(in_ten_minutes < 1000);
    }

    #[test]
    fn live_calls_go_before_a_backfill_backlog() {
        let pace = Pace::of(&QuotaWindow::app(100, 60));
        let mut calls = vec![(0, Priority::Backfill); 500];
        calls.push((30_000_000, Priority::Live));
        let sent = run(pace, &calls);
        let live = sent.iter().find(|s| s.1 == Priority::Live).unwrap().0;
        // The live call waits for the two slots backfill booked at most,
        // not behind the backlog.
        assert!(live - 30_000_000 <= 3 * pace.interval, "{live}");
        let backfill_after = sent
            .iter()
            .filter(|s| s.1 == Priority::Backfill && s.0 >= 30_000_000)
            .count();
        assert!(backfill_after > 400);
    }
}
