//! How `phoenix sync` reports progress while it applies. On a terminal: a live view, one line
//! per running step with its elapsed time and its task's newest log line (the first few; the
//! rest counted) and a bar of the steps ended, with each ended step printed above it.
//! Elsewhere: one line per ended step on stderr. With `--format json`: JSON Lines on stdout. It only shows events; it decides nothing.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use phoenix_exec::sync::{Event, StepOutcome};
use std::time::Duration;

/// Running steps shown with a line of their own; more are counted on the bar.
const SHOWN: usize = 6;

pub enum Progress {
    Json,
    Lines,
    Live(Live),
}

pub struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    /// Running steps in the order they started: id, title, and their line when they have one.
    running: Vec<(String, String, Option<ProgressBar>)>,
}

/// How an ended step is told, the same in every mode for people.
pub fn ended_line(title: &str, outcome: &StepOutcome, millis: u64) -> String {
    match outcome {
        StepOutcome::Done { .. } => format!("  ok  {title} ({millis} ms)"),
        StepOutcome::Failed { message } => format!("  FAILED {title}: {message}"),
        StepOutcome::Skipped { because } => format!("  skipped {title}: {because}"),
    }
}

impl Progress {
    /// `json`: events for machines; `terminal`: stderr is one, so the live view can redraw.
    pub fn new(json: bool, terminal: bool, steps: usize) -> Progress {
        match (json, terminal) {
            (true, _) => Progress::Json,
            (false, false) => Progress::Lines,
            (false, true) => Progress::Live(Live::new(steps, ProgressDrawTarget::stderr())),
        }
    }

    pub fn event(&mut self, event: &Event) {
        match self {
            Progress::Json => println!("{}", serde_json::to_string(event).expect("events serialize")),
            Progress::Lines => {
                if let Event::Finished { title, outcome, millis, .. } = event {
                    eprintln!("{}", ended_line(title, outcome, *millis));
                }
            }
            Progress::Live(live) => live.event(event),
        }
    }

    /// Clears the live view before the summary is printed.
    pub fn finish(self) {
        if let Progress::Live(live) = self {
            live.clear();
        }
    }
}

impl Live {
    fn new(steps: usize, target: ProgressDrawTarget) -> Live {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(steps as u64));
        overall.set_style(ProgressStyle::with_template("[{bar:30}] {pos}/{len} steps ended {msg}").expect("a valid template"));
        Live { multi, overall, running: Vec::new() }
    }

    fn spinner(&self, title: &str) -> ProgressBar {
        let bar = self.multi.insert_before(&self.overall, ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("  {spinner} {msg} ({elapsed})").expect("a valid template"));
        bar.set_message(title.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Started { id, title } => self.running.push((id.clone(), title.clone(), None)),
            Event::Progress { id, line } => {
                if let Some((_, title, Some(bar))) = self.running.iter().find(|(running, _, _)| running == id) {
                    bar.set_message(format!("{title}: {line}"));
                }
                return;
            }
            Event::Finished { id, title, outcome, millis } => {
                if let Some(at) = self.running.iter().position(|(running, _, _)| running == id) {
                    if let (_, _, Some(bar)) = self.running.remove(at) {
                        bar.finish_and_clear();
                        self.multi.remove(&bar);
                    }
                }
                let _ = self.multi.println(ended_line(title, outcome, *millis));
                self.overall.inc(1);
            }
        }
        self.show_first();
        let hidden = self.running.iter().filter(|(_, _, bar)| bar.is_none()).count();
        self.overall.set_message(if hidden > 0 { format!("({hidden} more running)") } else { String::new() });
    }

    /// Gives the longest-running steps a line each, up to [`SHOWN`].
    fn show_first(&mut self) {
        for at in 0..self.running.len().min(SHOWN) {
            if self.running[at].2.is_none() {
                let bar = self.spinner(&self.running[at].1);
                self.running[at].2 = Some(bar);
            }
        }
    }

    fn clear(self) {
        for (_, _, bar) in self.running {
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(id: &str) -> Event {
        Event::Started { id: id.into(), title: format!("step {id}") }
    }

    fn ended(id: &str) -> Event {
        Event::Finished { id: id.into(), title: format!("step {id}"), outcome: StepOutcome::Done { note: None }, millis: 3 }
    }

    fn lines(live: &Live) -> Vec<String> {
        live.running.iter().filter(|(_, _, bar)| bar.is_some()).map(|(id, _, _)| id.clone()).collect()
    }

    #[test]
    fn the_first_running_steps_get_lines_and_ended_ones_make_room() {
        let mut live = Live::new(10, ProgressDrawTarget::hidden());
        for id in 0..8 {
            live.event(&started(&id.to_string()));
        }
        assert_eq!(lines(&live), ["0", "1", "2", "3", "4", "5"]);
        assert_eq!(live.overall.message(), "(2 more running)");
        live.event(&ended("2"));
        assert_eq!(lines(&live), ["0", "1", "3", "4", "5", "6"], "the longest waiting step gets the freed line");
        assert_eq!(live.overall.position(), 1);
        assert_eq!(live.overall.message(), "(1 more running)");
        for id in ["0", "1", "3", "4", "5", "6", "7"] {
            live.event(&ended(id));
        }
        assert!(live.running.is_empty());
        assert_eq!(live.overall.position(), 8);
        assert_eq!(live.overall.message(), "");
    }

    #[test]
    fn a_running_steps_line_shows_its_tasks_newest_log_line() {
        let mut live = Live::new(2, ProgressDrawTarget::hidden());
        live.event(&started("clone"));
        live.event(&Event::Progress { id: "clone".into(), line: "transferred 1.6 GiB of 32.0 GiB (5.00%)".into() });
        let bar = live.running[0].2.as_ref().unwrap();
        assert_eq!(bar.message(), "step clone: transferred 1.6 GiB of 32.0 GiB (5.00%)");
        live.event(&Event::Progress { id: "gone".into(), line: "ignored".into() });
        assert_eq!(live.overall.position(), 0, "progress ends no step");
    }

    #[test]
    fn ended_steps_are_told_the_same_way_everywhere() {
        let failed = StepOutcome::Failed { message: "500".into() };
        assert_eq!(ended_line("firewall cluster: rules", &failed, 7), "  FAILED firewall cluster: rules: 500");
        assert_eq!(ended_line("dns", &StepOutcome::Done { note: None }, 7), "  ok  dns (7 ms)");
    }
}
