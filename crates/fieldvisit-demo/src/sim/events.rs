//! What supervisors must catch, placed on the rep-days: each kind once deterministically (on the
//! first simulated Tuesday and Thursday) so a small run holds every kind, then at random rates.

use super::team::Team;
use chrono::{Datelike, NaiveDate, Weekday};
use rand::Rng;
use rand::rngs::StdRng;

/// One thing to happen on a rep-day beside the plan's stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// One planned stop lasts only 1-3 minutes.
    ShortStop,
    /// A stop at an outlet that is not in the day's plan.
    Unplanned,
    /// A check-in sent from 300-600 m away from an outlet the rep never reaches.
    Claim,
    /// Two check-ins of the day carry the same storefront picture.
    PhotoReuse,
    /// A checklist that found a problem.
    Problem,
    /// The rep disputes one of the day's visits.
    Dispute,
    /// A supervisor accepts the day's short visit (or, for the spoofer, a suspect one).
    Accept,
    /// A supervisor rejects one of the day's (suspect) visits.
    Reject,
}

/// The plan of one simulated rep-day's deviations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Planned stops left out at the end of the day (the rep goes home early).
    pub skip_last: usize,
    /// The day's other events, each at most once.
    pub events: Vec<Event>,
    /// Outlets to ride through without stopping.
    pub drive_bys: usize,
    /// Spells without signal (the fixes arrive late, in one batch).
    pub gaps: usize,
    /// Two uploads reach the server in the wrong order.
    pub out_of_order: bool,
}

impl Script {
    /// Whether `event` happens this day.
    pub fn has(&self, event: Event) -> bool {
        self.events.contains(&event)
    }

    fn add(&mut self, event: Event) {
        if !self.has(event) {
            self.events.push(event);
        }
    }
}

/// The scripts of the simulated rep-days `days` (`(rep, date)`, real days left out), same order.
pub fn schedule(team: &Team, days: &[(usize, NaiveDate)], rng: &mut StdRng) -> Vec<Script> {
    let mut scripts: Vec<Script> = days
        .iter()
        .map(|&(rep, _)| {
            let mut s = Script {
                skip_last: if rng.random_bool(0.04) { rng.random_range(2..=4) } else { 0 },
                drive_bys: rng.random_range(1..=2),
                gaps: usize::from(rng.random_bool(0.6)),
                out_of_order: rng.random_bool(0.15),
                ..Script::default()
            };
            let rates = [
                (Event::ShortStop, 0.06),
                (Event::Unplanned, 0.15),
                (Event::Claim, 0.02),
                (Event::PhotoReuse, 0.01),
                (Event::Problem, 0.03),
                (Event::Dispute, 0.02),
            ];
            for (event, p) in rates {
                if rng.random_bool(p) {
                    s.add(event);
                }
            }
            if s.has(Event::ShortStop) && rng.random_bool(0.3) {
                s.add(Event::Accept);
            }
            if team.spoofer == Some(rep) && rng.random_bool(0.3) {
                s.add(Event::Reject);
            }
            s
        })
        .collect();
    // Every kind at least once: the first honest reps' first Tuesday and Thursday, the spoofer's
    // first day.
    let honest = |i: &usize| team.spoofer != Some(days[*i].0);
    let first_on = |weekday: Weekday, skip_rep: Option<usize>| {
        let date = days.iter().map(|d| d.1).filter(|d| d.weekday() == weekday).min()?;
        (0..days.len()).filter(honest).find(|&i| days[i].1 == date && Some(days[i].0) != skip_rep)
    };
    let tuesday = first_on(Weekday::Tue, None).or_else(|| (0..days.len()).find(honest));
    if let Some(i) = tuesday {
        let s = &mut scripts[i];
        s.skip_last = 3;
        s.add(Event::ShortStop);
        s.add(Event::Accept);
        s.drive_bys = s.drive_bys.max(2);
        s.gaps = s.gaps.max(1);
        s.out_of_order = true;
    }
    let other = tuesday.map(|i| days[i].0);
    let thursday = first_on(Weekday::Thu, other).or_else(|| first_on(Weekday::Thu, None)).or(tuesday);
    if let Some(i) = thursday {
        let s = &mut scripts[i];
        for event in [Event::Unplanned, Event::Claim, Event::PhotoReuse, Event::Problem, Event::Dispute] {
            s.add(event);
        }
        s.drive_bys = s.drive_bys.max(1);
    }
    if let Some(i) = (0..days.len()).find(|&i| team.spoofer == Some(days[i].0)) {
        scripts[i].add(Event::Reject);
        scripts[i].add(Event::Accept);
    }
    scripts
}
