//! Drawing: a header with the capture state, a tab line, the current
//! screen, a footer with its keys. Only the visible rows are built; sorted
//! and filtered orders are kept between frames and redone only when the
//! model or the view's settings change.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, Wrap};
use serde_json::Value;

use super::model::{Device, Model, SEVERITIES, badge};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Devices,
    Events,
    Scans,
    Logins,
}

impl Screen {
    pub const ALL: [Screen; 4] = [
        Screen::Devices,
        Screen::Events,
        Screen::Scans,
        Screen::Logins,
    ];

    fn title(self) -> &'static str {
        match self {
            Screen::Devices => "Devices",
            Screen::Events => "Events",
            Screen::Scans => "Scans",
            Screen::Logins => "Logins",
        }
    }

    fn index(self) -> usize {
        Screen::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// What Enter opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    Device(String),
    /// An event, by its position counted from the first event ever received.
    Event(u64),
}

/// Device table columns, in order; `s` cycles the sort through them.
const DEVICE_COLUMNS: [&str; 8] = [
    "Name",
    "Vendor",
    "Type",
    "IP",
    "MAC",
    "Last seen",
    "Traffic",
    "Problems",
];

pub struct Ui {
    pub screen: Screen,
    pub detail: Option<Detail>,
    pub detail_scroll: u16,
    /// Selected row per screen.
    pub selected: [usize; 4],
    offset: [usize; 4],
    pub filter: String,
    pub editing_filter: bool,
    /// Device sort column; `None`: problems first, then by name.
    pub sort: Option<usize>,
    pub reverse: bool,
    pub kind_filter: Option<&'static str>,
    pub min_severity: u8,
    pub help: bool,
    pub paused: bool,
    pub color: bool,
    /// Rows of the current screen's body at the last draw (for PgUp/PgDn).
    pub page: usize,
    cache: Cache,
}

#[derive(Default)]
struct Cache {
    /// The device order, for (devices generation, sort, reverse, filter).
    devices_key: Option<(u64, Option<usize>, bool, String)>,
    devices: Vec<usize>,
    /// The event lists, for (events generation, filter, kind, severity).
    events_key: Option<(u64, String, Option<&'static str>, u8)>,
    /// Filtered event positions (absolute), or None when every event shows.
    events: Option<Vec<u64>>,
    /// Scan and login events, newest first.
    scans: Vec<u64>,
    logins: Vec<u64>,
}

pub const KINDS: [&str; 5] = [
    "login",
    "scan",
    "bruteforce",
    "end_of_support",
    "new_device",
];

impl Ui {
    pub fn new(color: bool) -> Ui {
        Ui {
            screen: Screen::Devices,
            detail: None,
            detail_scroll: 0,
            selected: [0; 4],
            offset: [0; 4],
            filter: String::new(),
            editing_filter: false,
            sort: None,
            reverse: false,
            kind_filter: None,
            min_severity: 0,
            help: false,
            paused: false,
            color,
            page: 10,
            cache: Cache::default(),
        }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    fn severity_style(&self, rank: u8) -> Style {
        match rank {
            4 => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            3 => self.fg(Color::Red),
            2 => self.fg(Color::Yellow),
            1 => self.fg(Color::Cyan),
            _ => Style::default(),
        }
    }

    /// Rows of the current list (for moving the selection).
    pub fn rows(&mut self, m: &Model) -> usize {
        self.refresh(m);
        match self.screen {
            Screen::Devices => self.cache.devices.len(),
            Screen::Events => self
                .cache
                .events
                .as_ref()
                .map_or(m.events.len(), |v| v.len()),
            Screen::Scans => self.cache.scans.len(),
            Screen::Logins => self.cache.logins.len(),
        }
    }

    pub fn move_by(&mut self, m: &Model, delta: isize) {
        let n = self.rows(m);
        let i = self.screen.index();
        let cur = self.selected[i] as isize;
        self.selected[i] = (cur + delta).clamp(0, n.saturating_sub(1) as isize) as usize;
    }

    pub fn move_to(&mut self, m: &Model, end: bool) {
        let n = self.rows(m);
        self.selected[self.screen.index()] = if end { n.saturating_sub(1) } else { 0 };
    }

    /// What Enter opens on the current screen.
    pub fn open(&mut self, m: &Model) {
        self.refresh(m);
        let i = self.selected[self.screen.index()];
        self.detail = match self.screen {
            Screen::Devices => self
                .cache
                .devices
                .get(i)
                .map(|&d| Detail::Device(m.devices[d].key.clone())),
            Screen::Events => match &self.cache.events {
                Some(v) => v.get(i).map(|&p| Detail::Event(p)),
                None => (i < m.events.len()).then(|| Detail::Event(m.events_dropped + i as u64)),
            },
            Screen::Scans => self.cache.scans.get(i).map(|&p| Detail::Event(p)),
            Screen::Logins => self.cache.logins.get(i).map(|&p| Detail::Event(p)),
        };
        self.detail_scroll = 0;
    }

    pub fn cycle_sort(&mut self) {
        self.sort = match self.sort {
            None => Some(0),
            Some(c) if c + 1 < DEVICE_COLUMNS.len() => Some(c + 1),
            Some(_) => None,
        };
    }

    pub fn cycle_kind(&mut self) {
        self.kind_filter = match self.kind_filter {
            None => Some(KINDS[0]),
            Some(k) => KINDS
                .iter()
                .position(|x| *x == k)
                .and_then(|i| KINDS.get(i + 1).copied()),
        };
        self.selected[Screen::Events.index()] = 0;
    }

    pub fn cycle_severity(&mut self) {
        self.min_severity = (self.min_severity + 1) % 5;
        self.selected[Screen::Events.index()] = 0;
    }

    fn refresh(&mut self, m: &Model) {
        let filter = self.filter.to_lowercase();
        let key = (
            m.devices_generation,
            self.sort,
            self.reverse,
            filter.clone(),
        );
        if self.cache.devices_key.as_ref() != Some(&key) {
            self.cache.devices = device_order(m, self.sort, self.reverse, &filter);
            self.cache.devices_key = Some(key);
        }
        let key = (
            m.generation,
            filter.clone(),
            self.kind_filter,
            self.min_severity,
        );
        if self.cache.events_key.as_ref() == Some(&key) {
            return;
        }
        let base = m.events_dropped;
        let line_matches = |p: u64| {
            filter.is_empty()
                || m.events
                    .get((p - base) as usize)
                    .is_some_and(|e| e.line.to_lowercase().contains(&filter))
        };
        let all = filter.is_empty() && self.kind_filter.is_none() && self.min_severity == 0;
        self.cache.events = (!all).then(|| {
            (0..m.events.len() as u64)
                .map(|i| base + i)
                .filter(|&p| {
                    let e = &m.events[(p - base) as usize];
                    e.severity >= self.min_severity
                        && self.kind_filter.is_none_or(|k| e.kind == k)
                        && line_matches(p)
                })
                .collect()
        });
        // Newest first, those the filter lets through.
        let shown = |positions: &std::collections::VecDeque<u64>| -> Vec<u64> {
            positions
                .iter()
                .rev()
                .copied()
                .filter(|&p| line_matches(p))
                .collect()
        };
        self.cache.scans = shown(&m.scans);
        self.cache.logins = shown(&m.logins);
        self.cache.events_key = Some(key);
    }
}

/// Devices that match the filter, problems first (or by a column).
fn device_order(m: &Model, sort: Option<usize>, reverse: bool, filter: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..m.devices.len())
        .filter(|&i| filter.is_empty() || matches_device(&m.devices[i], filter))
        .collect();
    let d = &m.devices;
    match sort {
        None | Some(7) => {
            let urgency: Vec<u32> = d.iter().map(|x| severity(m.badges(x))).collect();
            order.sort_by(|&a, &b| {
                urgency[b]
                    .cmp(&urgency[a])
                    .then_with(|| d[a].sort_name.cmp(&d[b].sort_name))
            });
        }
        Some(6) => {
            order.sort_by(|&a, &b| d[b].bytes.cmp(&d[a].bytes).then(d[a].key.cmp(&d[b].key)))
        }
        Some(3) => order.sort_by_cached_key(|&i| (ip_sort_key(&d[i].ip), d[i].key.clone())),
        Some(c) => {
            let field = |x: &Device| -> String {
                match c {
                    0 => x.sort_name.clone(),
                    1 => x.vendor.to_lowercase(),
                    2 => x.kind.clone(),
                    4 => x.mac.clone(),
                    _ => x.last_seen.clone(),
                }
            };
            order.sort_by_cached_key(|&i| (field(&d[i]), d[i].key.clone()));
        }
    }
    if reverse {
        order.reverse();
    }
    order
}

/// How urgent a device's problems are: a device scanning like Mirai is
/// likely infected already; then default credentials, brute force, end of
/// support; "new" only breaks ties.
fn severity(b: u8) -> u32 {
    [
        (badge::SCANNING, 32),
        (badge::DEFAULT_CREDS, 16),
        (badge::BRUTE_FORCED, 8),
        (badge::OUT_OF_SUPPORT, 4),
        (badge::NEW, 1),
    ]
    .iter()
    .filter(|(bit, _)| b & bit != 0)
    .map(|(_, w)| w)
    .sum()
}

fn ip_sort_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => format!("4{:010}", u32::from(a)),
        Ok(std::net::IpAddr::V6(a)) => format!("6{:039}", u128::from(a)),
        Err(_) => format!("9{ip}"),
    }
}

fn matches_device(d: &Device, filter: &str) -> bool {
    [&d.name, &d.vendor, &d.kind, &d.ip, &d.mac]
        .iter()
        .any(|f| f.to_lowercase().contains(filter))
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn uptime(s: u64) -> String {
    format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
}

fn badge_spans(ui: &Ui, b: u8) -> Vec<Span<'static>> {
    let mut v = Vec::new();
    for (bit, label, color) in [
        (badge::DEFAULT_CREDS, "CRED", Color::Red),
        (badge::SCANNING, "SCAN", Color::Red),
        (badge::BRUTE_FORCED, "BRUTE", Color::Magenta),
        (badge::OUT_OF_SUPPORT, "EOS", Color::Yellow),
        (badge::NEW, "NEW", Color::Cyan),
    ] {
        if b & bit != 0 {
            v.push(Span::styled(
                label,
                ui.fg(color).add_modifier(Modifier::BOLD),
            ));
            v.push(Span::raw(" "));
        }
    }
    v
}

/// Draws everything.
pub fn draw(f: &mut Frame, m: &Model, ui: &mut Ui) {
    ui.refresh(m);
    let [header, spark, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, m, ui, header, spark);
    draw_tabs(f, ui, tabs);
    ui.page = body.height.saturating_sub(2).max(1) as usize;
    match ui.detail.clone() {
        Some(Detail::Device(k)) => draw_device(f, m, ui, body, &k),
        Some(Detail::Event(p)) => draw_event(f, m, ui, body, p),
        None => match ui.screen {
            Screen::Devices => draw_devices(f, m, ui, body),
            Screen::Events => draw_events(f, m, ui, body),
            Screen::Scans => draw_scans(f, m, ui, body),
            Screen::Logins => draw_logins(f, m, ui, body),
        },
    }
    draw_footer(f, ui, footer);
    if ui.help {
        draw_help(f, ui);
    }
}

fn draw_header(f: &mut Frame, m: &Model, ui: &Ui, line: Rect, spark: Rect) {
    let s = &m.stats;
    let state = if ui.paused {
        "PAUSED".to_string()
    } else if !m.status.is_empty() {
        m.status.clone()
    } else {
        s.state.clone()
    };
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let text = Line::from(vec![
        Span::styled(" iotwatch ", bold.patch(ui.fg(Color::Cyan))),
        Span::raw(format!("{} ", s.source)),
        Span::styled(
            format!("{state} "),
            if state.starts_with("disconnected") || ui.paused {
                ui.fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            },
        ),
        Span::raw(format!(
            "│ {} pkt/s │ drops {} │ flows {} │ devices {} │ events {} │ up {}",
            s.pps,
            s.drops,
            s.flows,
            m.devices.len(),
            m.events.len() as u64 + m.events_dropped,
            uptime(s.uptime)
        )),
    ]);
    f.render_widget(Paragraph::new(text), line);
    let data: Vec<u64> = m.throughput.iter().copied().collect();
    let tail = data.len().saturating_sub(spark.width as usize);
    f.render_widget(
        Sparkline::default()
            .data(&data[tail..])
            .style(ui.fg(Color::Green)),
        spark,
    );
}

fn draw_tabs(f: &mut Frame, ui: &Ui, area: Rect) {
    let mut spans = Vec::new();
    for (i, s) in Screen::ALL.iter().enumerate() {
        let style = if *s == ui.screen {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::default()
        };
        spans.push(Span::styled(format!(" {} {} ", i + 1, s.title()), style));
        spans.push(Span::raw(" "));
    }
    if ui.editing_filter || !ui.filter.is_empty() {
        spans.push(Span::styled(
            format!(
                " /{}{}",
                ui.filter,
                if ui.editing_filter { "_" } else { "" }
            ),
            ui.fg(Color::Yellow),
        ));
    }
    if ui.screen == Screen::Events {
        if let Some(k) = ui.kind_filter {
            spans.push(Span::raw(format!(" kind={k}")));
        }
        if ui.min_severity > 0 {
            spans.push(Span::raw(format!(
                " severity>={}",
                SEVERITIES[ui.min_severity as usize]
            )));
        }
    }
    if ui.screen == Screen::Devices
        && let Some(c) = ui.sort
    {
        spans.push(Span::raw(format!(
            " sort={}{}",
            DEVICE_COLUMNS[c],
            if ui.reverse { " (reversed)" } else { "" }
        )));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_footer(f: &mut Frame, ui: &Ui, area: Rect) {
    // Fits 80 columns.
    let keys = if ui.editing_filter {
        "type to filter  ⏎ apply  Esc clear"
    } else if ui.detail.is_some() {
        "↑↓ jk scroll  Esc ⌫ back  p pause  ? help  q quit"
    } else {
        match ui.screen {
            Screen::Devices => {
                "↑↓ move  ⏎ detail  / filter  s S sort  Tab 1-4 screen  p pause  ? help  q quit"
            }
            Screen::Events => {
                "↑↓ move  ⏎ detail  / filter  f kind  v sev  Tab 1-4  p pause  ? help  q quit"
            }
            _ => "↑↓ move  ⏎ detail  / filter  Tab 1-4 screen  p pause  ? help  q quit",
        }
    };
    f.render_widget(
        Paragraph::new(Line::from(Span::styled(
            keys,
            Style::default().add_modifier(Modifier::REVERSED),
        ))),
        area,
    );
}

/// Scrolls the window so the selection is visible; returns the first row.
fn window(ui: &mut Ui, n: usize, height: usize) -> usize {
    let i = ui.screen.index();
    let sel = ui.selected[i].min(n.saturating_sub(1));
    ui.selected[i] = sel;
    let mut off = ui.offset[i].min(n.saturating_sub(1));
    if sel < off {
        off = sel;
    } else if sel >= off + height {
        off = sel + 1 - height;
    }
    ui.offset[i] = off;
    off
}

fn selected_style() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

fn block(title: String) -> Block<'static> {
    Block::default().borders(Borders::TOP).title(title)
}

fn draw_devices(f: &mut Frame, m: &Model, ui: &mut Ui, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let n = ui.cache.devices.len();
    let off = window(ui, n, height);
    let sel = ui.selected[0];
    let wide = area.width >= 120;
    let rows: Vec<Row> = ui.cache.devices[off..(off + height).min(n)]
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let d = &m.devices[i];
            let mut cells = vec![
                Cell::from(if d.name.is_empty() {
                    "-".into()
                } else {
                    d.name.clone()
                }),
                Cell::from(d.vendor.clone()),
                Cell::from(d.kind.clone()),
                Cell::from(d.ip.clone()),
            ];
            if wide {
                cells.push(Cell::from(d.mac.clone()));
                cells.push(Cell::from(
                    d.last_seen.get(11..19).unwrap_or("").to_string(),
                ));
            }
            cells.push(Cell::from(human_bytes(d.bytes)));
            cells.push(Cell::from(Line::from(badge_spans(ui, m.badges(d)))));
            let row = Row::new(cells);
            if off + j == sel {
                row.style(selected_style())
            } else {
                row
            }
        })
        .collect();
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            DEVICE_COLUMNS.to_vec(),
            vec![
                Constraint::Fill(2),
                Constraint::Fill(2),
                Constraint::Length(11),
                Constraint::Length(15),
                Constraint::Length(17),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(24),
            ],
        )
    } else {
        (
            vec!["Name", "Vendor", "Type", "IP", "Traffic", "Problems"],
            vec![
                Constraint::Fill(2),
                Constraint::Fill(2),
                Constraint::Length(10),
                Constraint::Length(15),
                Constraint::Length(8),
                Constraint::Length(15),
            ],
        )
    };
    let table = Table::new(rows, widths)
        .header(
            Row::new(header)
                .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        )
        .block(block(format!(" Devices ({n}) ")));
    f.render_widget(table, area);
}

fn draw_events(f: &mut Frame, m: &Model, ui: &mut Ui, area: Rect) {
    let height = area.height.saturating_sub(1) as usize;
    let n = ui.cache.events.as_ref().map_or(m.events.len(), |v| v.len());
    let off = window(ui, n, height);
    let sel = ui.selected[1];
    let base = m.events_dropped;
    // Narrow: the time of day only, and a narrower kind column.
    let (ts_range, kind_w) = if area.width >= 120 {
        (0..19, 14)
    } else {
        (11..19, 10)
    };
    let mut lines = Vec::with_capacity(height);
    for row in off..(off + height).min(n) {
        let pos = match &ui.cache.events {
            Some(v) => v[row],
            None => base + row as u64,
        };
        let Some(e) = m.events.get((pos - base) as usize) else {
            continue;
        };
        let mut line = Line::from(vec![
            Span::raw(format!("{} ", e.ts.get(ts_range.clone()).unwrap_or(&e.ts))),
            Span::styled(
                format!("{:<8} ", SEVERITIES[e.severity as usize]),
                ui.severity_style(e.severity),
            ),
            Span::raw(format!("{:<kind_w$} {}", e.kind, e.line)),
        ]);
        if row == sel {
            line = line.style(selected_style());
        }
        lines.push(line);
    }
    f.render_widget(
        Paragraph::new(lines).block(block(format!(" Events ({n}) "))),
        area,
    );
}

/// A table of one kind of event (scans, logins), newest first.
#[allow(clippy::too_many_arguments)]
fn event_table(
    f: &mut Frame,
    m: &Model,
    ui: &mut Ui,
    area: Rect,
    title: &str,
    header: &[&'static str],
    widths: &[Constraint],
    cells: impl Fn(&Value) -> Vec<String>,
) {
    let height = area.height.saturating_sub(2) as usize;
    let list = match ui.screen {
        Screen::Scans => &ui.cache.scans,
        _ => &ui.cache.logins,
    };
    let n = list.len();
    let list = list.clone();
    let off = window(ui, n, height);
    let sel = ui.selected[ui.screen.index()];
    let base = m.events_dropped;
    let rows: Vec<Row> = list[off..(off + height).min(n)]
        .iter()
        .enumerate()
        .filter_map(|(j, &p)| {
            let e = m.events.get((p - base) as usize)?;
            let v: Value = serde_json::from_str(&e.raw).ok()?;
            let row = Row::new(cells(&v)).style(ui.severity_style(e.severity));
            Some(if off + j == sel {
                row.style(selected_style())
            } else {
                row
            })
        })
        .collect();
    let table = Table::new(rows, widths.to_vec())
        .header(
            Row::new(header.to_vec())
                .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        )
        .block(block(format!(" {title} ({n}) ")));
    f.render_widget(table, area);
}

fn t(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        o => o.to_string(),
    }
}

fn draw_scans(f: &mut Frame, m: &Model, ui: &mut Ui, area: Rect) {
    event_table(
        f,
        m,
        ui,
        area,
        "Scans",
        &[
            "Source",
            "MAC",
            "Verdict",
            "Direction",
            "Ports",
            "Targets",
            "SYNs",
            "Mirai",
        ],
        &[
            Constraint::Length(15),
            Constraint::Length(17),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Fill(1),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(7),
        ],
        |e| {
            vec![
                t(&e["source"]["ip"]),
                t(&e["source"]["mac"]),
                t(&e["verdict"]),
                t(&e["direction"]),
                e["ports"]
                    .as_array()
                    .map(|p| p.iter().take(6).map(t).collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
                t(&e["distinct_targets"]),
                t(&e["syns"]),
                t(&e["mirai_matches"]),
            ]
        },
    );
}

fn draw_logins(f: &mut Frame, m: &Model, ui: &mut Ui, area: Rect) {
    event_table(
        f,
        m,
        ui,
        area,
        "Logins",
        &[
            "Time", "Protocol", "Client", "Server", "User", "Password", "Default", "Outcome",
        ],
        &[
            Constraint::Length(8),
            Constraint::Length(11),
            Constraint::Length(15),
            Constraint::Length(21),
            Constraint::Fill(1),
            Constraint::Fill(1),
            Constraint::Length(7),
            Constraint::Length(7),
        ],
        |e| {
            vec![
                t(&e["ts"]).get(11..19).unwrap_or("").to_string(),
                t(&e["protocol"]),
                t(&e["client"]["ip"]),
                format!("{}:{}", t(&e["server"]["ip"]), t(&e["server"]["port"])),
                t(&e["username"]),
                // Only known defaults are shown in clear; the rest masked.
                e["password"]
                    .as_str()
                    .or(e["password_masked"].as_str())
                    .unwrap_or("-")
                    .to_string(),
                if e["default_credential"] == true {
                    "yes"
                } else {
                    "no"
                }
                .into(),
                t(&e["outcome"]),
            ]
        },
    );
}

fn field_line(ui: &Ui, d: &Value, name: &str, key: &str) -> Line<'static> {
    let conf = d["confidence"][key]
        .as_f64()
        .map(|c| format!(" ({:.0} %)", c * 100.0))
        .unwrap_or_default();
    Line::from(vec![
        Span::styled(format!("{name:<10}"), ui.fg(Color::Cyan)),
        Span::raw(format!("{}{conf}", t(&d[key]))),
    ])
}

fn draw_device(f: &mut Frame, m: &Model, ui: &mut Ui, area: Rect, key: &str) {
    let Some(dev) = m.device(key) else {
        f.render_widget(Paragraph::new("device gone"), area);
        return;
    };
    let d = &dev.json;
    let [text_area, spark_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(area);
    let mut lines = vec![Line::from(badge_spans(ui, m.badges(dev)))];
    for (name, k) in [
        ("vendor", "vendor"),
        ("type", "type"),
        ("model", "model"),
        ("firmware", "firmware"),
        ("os", "os"),
        ("hostname", "hostname"),
    ] {
        lines.push(field_line(ui, d, name, k));
    }
    let list = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().map(t).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    lines.push(Line::from(format!("{:<10}{}", "mac", t(&d["mac"]))));
    lines.push(Line::from(format!("{:<10}{}", "ips", list(&d["ips"]))));
    lines.push(Line::from(format!(
        "{:<10}{}",
        "services",
        list(&d["services"])
    )));
    lines.push(Line::from(format!(
        "{:<10}{} packets, {}; first {} last {}",
        "traffic",
        dev.packets,
        human_bytes(dev.bytes),
        t(&d["first_seen"]),
        t(&d["last_seen"])
    )));
    let s = &d["support"];
    lines.push(Line::from(vec![
        Span::styled(format!("{:<10}", "support"), ui.fg(Color::Cyan)),
        Span::styled(
            format!(
                "{} {}",
                t(&s["status"]),
                if s["end"].is_null() {
                    String::new()
                } else {
                    t(&s["end"])
                }
            ),
            if s["status"] == "ended" {
                ui.fg(Color::Red)
            } else {
                Style::default()
            },
        ),
    ]));
    if !s["source"].is_null() {
        lines.push(Line::from(format!("{:<10}source: {}", "", t(&s["source"]))));
    }
    if !s["reason"].is_null() {
        lines.push(Line::from(format!("{:<10}{}", "", t(&s["reason"]))));
    }
    let cop = &d["code_of_practice"];
    lines.push(Line::from(format!(
        "{:<10}default credentials seen: {}; disclosure: {}",
        "CoP",
        t(&cop["default_credentials_seen"]),
        cop["disclosure"]["policy_url"]
            .as_str()
            .or(cop["disclosure"]["contact"].as_str())
            .unwrap_or("none published")
    )));
    lines.push(Line::from(Span::styled(
        "Evidence",
        Style::default().add_modifier(Modifier::BOLD),
    )));
    if let Some(ev) = d["evidence"].as_array() {
        for e in ev {
            let claims = e["claims"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| format!("{k}={}", t(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            lines.push(Line::from(format!(
                "  {} {}: {}{}",
                t(&e["signal"]),
                t(&e["field"]),
                t(&e["value"]),
                if claims.is_empty() {
                    String::new()
                } else {
                    format!(" → {claims}")
                }
            )));
        }
    }
    lines.push(Line::from(Span::styled(
        "Events",
        Style::default().add_modifier(Modifier::BOLD),
    )));
    for e in m.device_events(dev, 20) {
        lines.push(Line::from(vec![
            Span::raw(format!("  {} ", e.ts)),
            Span::styled(
                format!("{:<8} ", SEVERITIES[e.severity as usize]),
                ui.severity_style(e.severity),
            ),
            Span::raw(format!("{} {}", e.kind, e.line)),
        ]));
    }
    let title = format!(
        " {} {} ",
        if dev.name.is_empty() {
            "device"
        } else {
            &dev.name
        },
        dev.key
    );
    f.render_widget(
        Paragraph::new(lines)
            .block(block(title))
            .wrap(Wrap { trim: false })
            .scroll((ui.detail_scroll, 0)),
        text_area,
    );
    let data: Vec<u64> = dev.traffic.iter().copied().collect();
    let tail = data.len().saturating_sub(spark_area.width as usize);
    f.render_widget(
        Sparkline::default()
            .block(block(" packets per update ".into()))
            .data(&data[tail..])
            .style(ui.fg(Color::Green)),
        spark_area,
    );
}

fn draw_event(f: &mut Frame, m: &Model, ui: &Ui, area: Rect, pos: u64) {
    let Some(e) = pos
        .checked_sub(m.events_dropped)
        .and_then(|i| m.events.get(i as usize))
    else {
        f.render_widget(Paragraph::new("event no longer kept"), area);
        return;
    };
    // Passwords are masked at the source (DESIGN.md): only known defaults
    // are in the object at all.
    let pretty = serde_json::from_str::<Value>(&e.raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| e.raw.to_string());
    let lines: Vec<Line> = pretty.lines().map(|l| Line::from(l.to_string())).collect();
    f.render_widget(
        Paragraph::new(lines)
            .block(block(format!(" {} event ", e.kind)))
            .scroll((ui.detail_scroll, 0)),
        area,
    );
}

fn draw_help(f: &mut Frame, ui: &Ui) {
    let area = f.area();
    let w = area.width.min(64);
    let h = area.height.min(22);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let mut text = vec![
        Line::from("↑ ↓ j k     move          PgUp PgDn   page"),
        Line::from("g G         first, last   Enter       detail"),
        Line::from("Esc ⌫       back          Tab 1-4     screens"),
        Line::from("/           filter        s S         sort, reverse"),
        Line::from("f v         event kind, minimum severity"),
        Line::from("p           pause         .           step (replay, paused)"),
        Line::from("?           this help     q           quit"),
        Line::from(""),
        Line::from(Span::styled(
            "Problems",
            Style::default().add_modifier(Modifier::BOLD),
        )),
    ];
    for (bit, meaning) in [
        (badge::DEFAULT_CREDS, "default credentials used or accepted"),
        (badge::SCANNING, "scans or brute-forces others"),
        (badge::BRUTE_FORCED, "being brute-forced (5+ failed logins)"),
        (badge::OUT_OF_SUPPORT, "past its security-update support"),
        (badge::NEW, "new on the network"),
    ] {
        let mut spans = badge_spans(ui, bit);
        spans.push(Span::raw(meaning));
        text.push(Line::from(spans));
    }
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(text).block(Block::default().borders(Borders::ALL).title(" Help ")),
        r,
    );
}
