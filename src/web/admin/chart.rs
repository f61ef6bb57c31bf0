//! The dashboard's chart: sign-ups and unsubscribes per week, drawn on the server as
//! SVG, so it reads without JavaScript. Weeks start on Monday.

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

use crate::store::DayCounts;

/// How many weeks the chart shows, this one included.
pub const WEEKS: u64 = 12;

const LEFT: u32 = 44;
const TOP: u32 = 12;
const PLOT_HEIGHT: u32 = 180;
const SLOT: u32 = 50;
const BAR: u32 = 18;

#[derive(Serialize, Debug, PartialEq)]
pub struct Week {
    /// "2 Nov": the Monday it starts.
    pub label: String,
    pub signups: i64,
    pub unsubscribes: i64,
    x: u32,
    signups_y: u32,
    signups_height: u32,
    unsubscribes_x: u32,
    unsubscribes_y: u32,
    unsubscribes_height: u32,
    label_x: u32,
}

#[derive(Serialize, Debug)]
pub struct Chart {
    pub weeks: Vec<Week>,
    /// Gridlines: (y, value).
    ticks: Vec<(u32, i64)>,
    width: u32,
    height: u32,
    axis_y: u32,
    label_y: u32,
}

/// The Monday of the first week shown, for the query.
pub fn first_monday(today: NaiveDate) -> NaiveDate {
    let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
    monday - Days::new(7 * (WEEKS - 1))
}

/// The smallest of 1, 2, 5, 10, 20, 50... at least `n`.
fn nice_ceiling(n: i64) -> i64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m >= n {
                return step * m;
            }
        }
        step *= 10;
    }
}

/// Adds up `days` into the weeks up to `today`.
pub fn weekly(days: &[DayCounts], today: NaiveDate) -> Chart {
    let first = first_monday(today);
    let mut totals = vec![(0i64, 0i64); WEEKS as usize];
    for DayCounts {
        day,
        signups,
        unsubscribes,
    } in days
    {
        let Ok(offset) = usize::try_from((*day - first).num_days()) else {
            continue;
        };
        if let Some(week) = totals.get_mut(offset / 7) {
            week.0 += signups;
            week.1 += unsubscribes;
        }
    }
    let top = nice_ceiling(
        totals
            .iter()
            .map(|(s, u)| (*s).max(*u))
            .max()
            .unwrap_or(0)
            .max(1),
    );
    let height_of = |n: i64| u32::try_from(n * i64::from(PLOT_HEIGHT) / top).unwrap_or(0);
    let axis_y = TOP + PLOT_HEIGHT;
    let weeks = totals
        .iter()
        .enumerate()
        .map(|(i, (signups, unsubscribes))| {
            let monday = first + Days::new(7 * i as u64);
            let x = LEFT + SLOT * i as u32 + (SLOT - 2 * BAR - 4) / 2;
            Week {
                label: monday.format("%-d %b").to_string(),
                signups: *signups,
                unsubscribes: *unsubscribes,
                x,
                signups_y: axis_y - height_of(*signups),
                signups_height: height_of(*signups),
                unsubscribes_x: x + BAR + 4,
                unsubscribes_y: axis_y - height_of(*unsubscribes),
                unsubscribes_height: height_of(*unsubscribes),
                label_x: LEFT + SLOT * i as u32 + SLOT / 2,
            }
        })
        .collect();
    Chart {
        weeks,
        ticks: [0, top / 2, top]
            .into_iter()
            .filter(|value| *value == 0 || *value == top || top % 2 == 0)
            .map(|value| (axis_y - height_of(value), value))
            .collect(),
        width: LEFT + SLOT * WEEKS as u32 + 8,
        height: axis_y + 26,
        axis_y,
        label_y: axis_y + 18,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn counts(text: &str, signups: i64, unsubscribes: i64) -> DayCounts {
        DayCounts {
            day: day(text),
            signups,
            unsubscribes,
        }
    }

    #[test]
    fn days_are_added_up_into_weeks_starting_on_monday() {
        // Monday 23 November 2026 is in the last week shown; the first starts 7 September.
        let today = day("2026-11-25");
        assert_eq!(first_monday(today), day("2026-09-07"));
        let chart = weekly(
            &[
                counts("2026-09-06", 100, 100), // before the first week: left out
                counts("2026-09-07", 3, 0),
                counts("2026-09-13", 2, 1), // the Sunday of the same week
                counts("2026-11-23", 7, 2),
            ],
            today,
        );
        assert_eq!(chart.weeks.len(), 12);
        assert_eq!(
            (chart.weeks[0].signups, chart.weeks[0].unsubscribes),
            (5, 1)
        );
        assert_eq!(chart.weeks[0].label, "7 Sep");
        assert_eq!(
            (chart.weeks[11].signups, chart.weeks[11].unsubscribes),
            (7, 2)
        );
        assert!(
            chart.weeks[1..11]
                .iter()
                .all(|w| w.signups == 0 && w.unsubscribes == 0)
        );
        // The tallest bar (7, scaled to a top of 10) is 7/10 of the plot.
        assert_eq!(chart.weeks[11].signups_height, PLOT_HEIGHT * 7 / 10);
    }

    #[test]
    fn the_scale_tops_out_at_a_round_number() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(4_321), 5_000);
    }
}
