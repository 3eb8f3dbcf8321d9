// The kiosk's screen: one full-screen window showing the view the station agent
// asks for, and the end-of-session countdown above everything. It runs as the
// unprivileged kiosk user, so it only draws and reports input; every decision
// is the agent's.
//
// Protocol (see src/ports/screen.ts): JSON lines on stdin,
//   {"show": ScreenView}  {"countdown": Countdown | null}
// and ScreenEvent lines on stdout ({"kind":"touched"}, {"kind":"chose","pool":…}).
// Nothing else goes to stdout; diagnostics go to stderr. EOF on stdin: exit 0.
//
// Run: gjs -m screen.js
import Cairo from 'cairo';
import Gdk from 'gi://Gdk?version=3.0';
import GdkPixbuf from 'gi://GdkPixbuf';
import Gio from 'gi://Gio';
import GLib from 'gi://GLib';
import Gtk from 'gi://Gtk?version=3.0';

// The countdown has to stay above the viewer, which only an override-redirect
// window can do without a cooperating window manager. That exists on X alone:
// under a Wayland compositor, prefer Xwayland when it is there.
Gdk.set_allowed_backends('x11,*');
Gtk.init(null);

const log = (msg) => printerr(`screen: ${msg}`);

// ---------------------------------------------------------------- output

// Written straight to fd 1 and unbuffered, so each event reaches the agent at once.
const stdout = new Gio.UnixOutputStream({ fd: 1, close_fd: false });
const encoder = new TextEncoder();

function emit(event) {
  try {
    stdout.write_all(encoder.encode(`${JSON.stringify(event)}\n`), null);
  } catch (e) {
    log(`cannot report ${event.kind}: ${e.message}`);
  }
}

// ---------------------------------------------------------------- geometry and style

function monitorGeometry() {
  const display = Gdk.Display.get_default();
  // Xvfb and bare X servers often have no primary output.
  const monitor = display.get_primary_monitor() ?? display.get_monitor(0);
  return monitor.get_geometry();
}

// Sizes follow the screen's height, so text reads the same on any kiosk screen.
function loadStyle(height) {
  const px = (f) => `${Math.max(8, Math.round(height * f))}px`;
  const css = `
    window.tabula, window.tabula-countdown { background-color: #000000; }
    .tabula label, .tabula-countdown label {
      color: #ffffff; font-family: "DejaVu Sans", sans-serif; font-size: ${px(0.045)};
    }
    .tabula .title { font-size: ${px(0.07)}; font-weight: bold; }
    .tabula .detail { font-size: ${px(0.042)}; color: #d8d8d8; }
    .tabula .prompt { font-size: ${px(0.06)}; font-weight: bold; }
    .tabula .band { background-color: rgba(0, 0, 0, 0.72); padding: ${px(0.03)}; }
    .tabula .unavailable-band { background-color: #7a1010; padding: ${px(0.05)}; }
    .tabula .unavailable-band .detail { color: #ffffff; }
    .tabula button.pool {
      background-image: none; background-color: #1c3550; box-shadow: none; text-shadow: none;
      border: ${px(0.006)} solid #3f6f9f; border-radius: ${px(0.02)}; padding: ${px(0.02)} ${px(0.04)};
    }
    .tabula button.pool:hover { background-color: #24466a; }
    .tabula button.pool:focus { border-color: #ffd24a; background-color: #2b5580; }
    .tabula button.pool:active { background-color: #3a6ea3; }
    .tabula .pool-key { font-size: ${px(0.05)}; font-weight: bold; color: #ffd24a; }
    .tabula .pool-label { font-size: ${px(0.055)}; font-weight: bold; }
    .tabula .pool-ready { font-size: ${px(0.035)}; color: #c8d8e8; }
    window.tabula-countdown { background-color: #b3261e; }
    .tabula-countdown .countdown-box { padding: ${px(0.02)}; }
    .tabula-countdown .countdown-message { font-size: ${px(0.045)}; font-weight: bold; }
    .tabula-countdown .countdown-seconds { font-size: ${px(0.08)}; font-weight: bold; }
  `;
  const provider = new Gtk.CssProvider();
  provider.load_from_data(encoder.encode(css));
  Gtk.StyleContext.add_provider_for_screen(Gdk.Screen.get_default(), provider, Gtk.STYLE_PROVIDER_PRIORITY_APPLICATION);
}

const geometry = monitorGeometry();
loadStyle(geometry.height);

function label(text, cls, props = {}) {
  const l = new Gtk.Label({ label: text, wrap: true, justify: Gtk.Justification.CENTER, max_width_chars: 40, ...props });
  if (cls) l.get_style_context().add_class(cls);
  return l;
}

function vbox(props = {}) {
  return new Gtk.Box({ orientation: Gtk.Orientation.VERTICAL, ...props });
}

// ---------------------------------------------------------------- images

/**
 * Cycles `paths` every `intervalS` seconds, each scaled to fit (aspect kept)
 * and centred on black. Only the picture on screen is kept in memory: a site's
 * slideshow may be many large photos.
 */
function slides(paths, intervalS) {
  const area = new Gtk.DrawingArea({ hexpand: true, vexpand: true });
  const broken = new Set();
  let index = 0;
  let cached = { key: '', pixbuf: null };

  function load(path, width, height) {
    try {
      const full = GdkPixbuf.Pixbuf.new_from_file(path).apply_embedded_orientation();
      const scale = Math.min(width / full.get_width(), height / full.get_height());
      const w = Math.max(1, Math.round(full.get_width() * scale));
      const h = Math.max(1, Math.round(full.get_height() * scale));
      return full.scale_simple(w, h, GdkPixbuf.InterpType.BILINEAR);
    } catch (e) {
      // Logged once: the slideshow goes on with the other pictures.
      log(`cannot show ${path}: ${e.message}`);
      broken.add(path);
      return null;
    }
  }

  function current(width, height) {
    for (let tries = 0; tries < paths.length; tries++) {
      const path = paths[index];
      if (!broken.has(path)) {
        const key = `${path}@${width}x${height}`;
        if (cached.key !== key) cached = { key, pixbuf: load(path, width, height) };
        if (cached.pixbuf) return cached.pixbuf;
      }
      index = (index + 1) % paths.length;
    }
    return null;
  }

  area.connect('draw', (widget, cr) => {
    const width = widget.get_allocated_width();
    const height = widget.get_allocated_height();
    cr.setSourceRGB(0, 0, 0);
    cr.paint();
    const pixbuf = paths.length > 0 && width > 1 && height > 1 ? current(width, height) : null;
    if (pixbuf) {
      Gdk.cairo_set_source_pixbuf(cr, pixbuf, Math.floor((width - pixbuf.get_width()) / 2), Math.floor((height - pixbuf.get_height()) / 2));
      cr.paint();
    }
    // gjs otherwise keeps each frame's context until a garbage collection.
    cr.$dispose();
    return true;
  });

  if (paths.length > 1) {
    const ms = Math.max(100, Math.round((Number(intervalS) || 5) * 1000));
    const timer = GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
      index = (index + 1) % paths.length;
      area.queue_draw();
      return GLib.SOURCE_CONTINUE;
    });
    area.connect('destroy', () => GLib.source_remove(timer));
  }
  return area;
}

// ---------------------------------------------------------------- views

const strings = (v) => (Array.isArray(v) ? v.filter((s) => typeof s === 'string') : []);
const text = (v) => (typeof v === 'string' ? v : '');

/** Views on which any input means "someone is here". */
const TOUCHABLE = new Set(['slideshow', 'blank', 'unavailable']);

function slideshowView(v) {
  const overlay = new Gtk.Overlay();
  overlay.add(slides(strings(v.images), v.intervalS));
  if (text(v.prompt) !== '') {
    const band = vbox({ valign: Gtk.Align.END, halign: Gtk.Align.FILL });
    band.get_style_context().add_class('band');
    band.add(label(text(v.prompt), 'prompt', { max_width_chars: 50 }));
    overlay.add_overlay(band);
  }
  return { widget: overlay };
}

function blankView() {
  return { widget: new Gtk.Box() };
}

function menuView(v) {
  const pools = Array.isArray(v.pools) ? v.pools.filter((p) => p && typeof p.name === 'string') : [];
  const box = vbox({ valign: Gtk.Align.CENTER, halign: Gtk.Align.CENTER, spacing: Math.round(geometry.height * 0.04) });
  box.add(label(text(v.title), 'title'));
  // Up to four in a column; more go side by side so they all fit on the screen.
  const columns = Math.min(3, Math.ceil(pools.length / 4));
  const rows = Math.ceil(pools.length / Math.max(1, columns));
  const grid = new Gtk.Grid({ row_spacing: Math.round(geometry.height * 0.025), column_spacing: Math.round(geometry.width * 0.03), halign: Gtk.Align.CENTER });
  const buttons = pools.map((p, i) => {
    const button = new Gtk.Button({ can_focus: true });
    button.get_style_context().add_class('pool');
    button.set_size_request(Math.round((geometry.width * 0.6) / Math.max(1, columns)), -1);
    const inner = new Gtk.Box({ orientation: Gtk.Orientation.HORIZONTAL, spacing: Math.round(geometry.width * 0.03) });
    // The digit that picks it from the keyboard.
    if (i < 9) inner.add(label(String(i + 1), 'pool-key', { wrap: false, valign: Gtk.Align.CENTER }));
    const texts = vbox({ hexpand: true, halign: Gtk.Align.CENTER });
    texts.add(label(text(p.label) || p.name, 'pool-label', { max_width_chars: 30 }));
    texts.add(label(`${Number(p.ready) || 0} ready`, 'pool-ready'));
    inner.add(texts);
    button.add(inner);
    button.connect('clicked', () => emit({ kind: 'chose', pool: p.name }));
    grid.attach(button, Math.floor(i / rows), i % rows, 1, 1);
    return button;
  });
  box.add(grid);
  return {
    widget: box,
    focus: buttons[0],
    key(keyval) {
      const ch = String.fromCodePoint(Gdk.keyval_to_unicode(keyval) || 0x20);
      if (ch < '1' || ch > '9') return false;
      const button = buttons[Number(ch) - 1];
      if (button) button.clicked();
      return true;
    },
  };
}

function waitingView(v) {
  const images = strings(v.images);
  const box = vbox({ valign: images.length > 0 ? Gtk.Align.FILL : Gtk.Align.CENTER, spacing: Math.round(geometry.height * 0.02) });
  box.set_margin_bottom(Math.round(geometry.height * 0.06));
  if (images.length > 0) box.add(slides(images, v.intervalS));
  box.add(label(text(v.message), 'title'));
  if (typeof v.position === 'number') box.add(label(`Your place in the queue: ${v.position}`, 'detail'));
  return { widget: box };
}

function messageView(v) {
  const box = vbox({ valign: Gtk.Align.CENTER, halign: Gtk.Align.CENTER, spacing: Math.round(geometry.height * 0.03) });
  box.add(label(text(v.title), 'title'));
  if (text(v.detail) !== '') box.add(label(text(v.detail), 'detail'));
  return { widget: box };
}

function unavailableView(v) {
  // A full-width red band: at a glance, not the usual screens.
  const band = vbox({ valign: Gtk.Align.CENTER, hexpand: true, spacing: Math.round(geometry.height * 0.03) });
  band.get_style_context().add_class('unavailable-band');
  band.add(label(text(v.title), 'title'));
  if (text(v.detail) !== '') band.add(label(text(v.detail), 'detail'));
  return { widget: band };
}

const VIEWS = {
  slideshow: slideshowView,
  blank: blankView,
  menu: menuView,
  waiting: waitingView,
  message: messageView,
  unavailable: unavailableView,
};

// ---------------------------------------------------------------- the main window

const main = new Gtk.Window({ type: Gtk.WindowType.TOPLEVEL, decorated: false, title: 'Tabula' });
main.get_style_context().add_class('tabula');
main.add_events(Gdk.EventMask.KEY_PRESS_MASK | Gdk.EventMask.BUTTON_PRESS_MASK);
// A kiosk's screen is never closed by the visitor (Alt+F4 under a window manager).
main.connect('delete-event', () => true);

/**
 * fullscreen() is only a request to a window manager (cage honours it); on a
 * bare X server nobody does, so the window also asks for the monitor's
 * geometry itself.
 */
function cover() {
  const g = monitorGeometry();
  main.move(g.x, g.y);
  main.set_default_size(g.width, g.height);
  main.resize(g.width, g.height);
  main.fullscreen();
}
cover();

let kind = '';
let current = { widget: null };

main.connect('key-press-event', (_w, event) => {
  if (TOUCHABLE.has(kind)) {
    emit({ kind: 'touched' });
    return true;
  }
  const [, keyval] = event.get_keyval();
  // The menu's digits; arrows, Tab and Enter are GTK's own focus handling.
  return current.key?.(keyval) ?? false;
});

main.connect('button-press-event', (_w, event) => {
  // GTK adds 2BUTTON/3BUTTON events after a double click: one touch, one event.
  if (event.get_event_type() !== Gdk.EventType.BUTTON_PRESS) return false;
  if (!TOUCHABLE.has(kind)) return false;
  emit({ kind: 'touched' });
  return true;
});

const blankCursor = Gdk.Cursor.new_for_display(Gdk.Display.get_default(), Gdk.CursorType.BLANK_CURSOR);

function show(view) {
  const build = view && Object.hasOwn(VIEWS, view.kind) ? VIEWS[view.kind] : undefined;
  if (!build) {
    log(`unknown view ${JSON.stringify(view?.kind)}`);
    return;
  }
  const next = build(view);
  if (current.widget) current.widget.destroy();
  current = next;
  kind = view.kind;
  main.add(next.widget);
  main.show_all();
  // Only the menu is pointed at; elsewhere a cursor is just a stray arrow.
  main.get_window()?.set_cursor(kind === 'menu' ? null : blankCursor);
  // A message stays behind the viewer (that is its point); every other view
  // comes to the front with the keyboard focus, e.g. after the viewer ended.
  if (kind !== 'message') {
    main.present();
    raiseCountdown();
  }
  if (next.focus) {
    main.set_focus_visible(true);
    next.focus.grab_focus();
  } else {
    main.set_focus(null);
  }
}

// ---------------------------------------------------------------- the countdown overlay

/**
 * An override-redirect (POPUP) window: no window manager stacks or focuses it,
 * so it can sit above the viewer's full-screen window. A window mapped later
 * still lands above it, hence the raise on every tick. raise() rather than
 * present(): present() would also take the keyboard focus from the viewer.
 */
const overlay = new Gtk.Window({ type: Gtk.WindowType.POPUP });
overlay.get_style_context().add_class('tabula-countdown');
const overlayBox = vbox({ halign: Gtk.Align.CENTER });
overlayBox.get_style_context().add_class('countdown-box');
const overlayMessage = label('', 'countdown-message', { max_width_chars: 60 });
const overlaySeconds = label('', 'countdown-seconds', { wrap: false });
overlayBox.add(overlayMessage);
overlayBox.add(overlaySeconds);
overlay.add(overlayBox);

let countdown = null;

/** A band across the top of the screen: it hides the least of the desktop. */
function placeOverlay() {
  const g = monitorGeometry();
  overlay.move(g.x, g.y);
  overlay.set_size_request(g.width, -1);
}
placeOverlay();
Gdk.Screen.get_default().connect('monitors-changed', () => {
  cover();
  placeOverlay();
});

function raiseCountdown() {
  if (countdown) overlay.get_window()?.raise();
}

function tick() {
  const left = Math.max(0, Math.ceil((countdown.deadline - GLib.get_monotonic_time()) / 1_000_000));
  const shown = `${left} s`;
  if (overlaySeconds.get_text() !== shown) overlaySeconds.set_text(shown);
  raiseCountdown();
}

function setCountdown(c) {
  if (countdown) GLib.source_remove(countdown.timer);
  countdown = null;
  if (!c) {
    overlay.hide();
    return;
  }
  const seconds = Math.max(0, Number(c.seconds) || 0);
  overlayMessage.set_text(text(c.message));
  const timer = GLib.timeout_add(GLib.PRIORITY_DEFAULT, 250, () => {
    tick();
    return GLib.SOURCE_CONTINUE;
  });
  countdown = { deadline: GLib.get_monotonic_time() + seconds * 1_000_000, timer };
  tick();
  overlay.show_all();
  // Clicks and touches go through to what is below (the visitor's desktop).
  // Set on the mapped GdkWindow: the widget's own input shape, set earlier,
  // is replaced by an unset one when GTK realizes the window.
  overlay.get_window().input_shape_combine_region(new Cairo.Region(), 0, 0);
  raiseCountdown();
}

// ---------------------------------------------------------------- input from the agent

function handle(line) {
  if (line.trim() === '') return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    log(`not JSON: ${line.slice(0, 120)}`);
    return;
  }
  if (msg === null || typeof msg !== 'object') {
    log(`not an object: ${line.slice(0, 120)}`);
    return;
  }
  if ('show' in msg) show(msg.show);
  if ('countdown' in msg) setCountdown(msg.countdown);
}

const input = new Gio.DataInputStream({
  base_stream: new Gio.UnixInputStream({ fd: 0, close_fd: false }),
  close_base_stream: false,
});

function readNext() {
  input.read_line_async(GLib.PRIORITY_DEFAULT, null, (stream, result) => {
    let line;
    try {
      [line] = stream.read_line_finish_utf8(result);
    } catch (e) {
      log(`stdin: ${e.message}`);
      line = null;
    }
    // EOF: the agent closed the pipe (or is gone); nothing more will come.
    if (line === null) {
      Gtk.main_quit();
      return;
    }
    try {
      handle(line);
    } catch (e) {
      // One bad message must not take the kiosk's screen down.
      log(`cannot handle ${line.slice(0, 120)}: ${e.message}`);
    }
    readNext();
  });
}

readNext();
Gtk.main();
