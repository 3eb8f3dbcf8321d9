#!/usr/bin/env node
// The kiosk's station agent: wires the adapters to the agent and runs it
// until SIGTERM. See kiosk-overlay/README.md for how the image starts it.
import { parseArgs } from 'node:util';
import { StationAgent } from './app/station-agent.js';
import type { StationConfig } from './config/station-config.js';
import { asStationError } from './domain/errors.js';
import { requireServer, slideshowListUrl } from './config/station-conf.js';
import { STATION_PATHS } from './config/station-sources.js';
import { EvdevActivity } from './adapters/evdev-activity.js';
import { FolderPictures } from './adapters/folder-pictures.js';
import { GjsScreen } from './adapters/gjs-screen.js';
import { JournalLogger } from './adapters/journal-logger.js';
import { lookupAccount, ProcKioskUser } from './adapters/proc-kiosk-user.js';
import { RemoteViewer } from './adapters/remote-viewer.js';
import { FileSettingsSource } from './adapters/station-conf-file.js';
import { StationSettings } from './app/station-settings.js';
import { SystemClock } from './adapters/system-clock.js';
import { TcpServerLink } from './adapters/tcp-server-link.js';
import { X11IdleActivity } from './adapters/x11-idle-activity.js';
import type { ActivitySource } from './ports/activity.js';
import type { KioskAccount } from './ports/kiosk-user.js';
import type { Logger } from './ports/logger.js';

const USAGE = `usage: tabula-station [--config FILE] [--card-config FILE] [--lease-dir DIR] [--state-dir DIR]
  --config       the image's settings (default ${STATION_PATHS.config})
  --card-config  the settings on the card's boot partition (default ${STATION_PATHS.card})
  --lease-dir    systemd-networkd's DHCP leases (default ${STATION_PATHS.leaseDir})
  --state-dir    where the server's slideshow is cached (default /run/tabula-station)
Settings come from the built-in defaults, the DHCP lease, the server's
/client.conf, the card's file and the image's file, each later one winning.`;

/** The kiosk's environment: only what its programs need to find the display and a home. */
function kioskEnv(cfg: StationConfig, home: string): Record<string, string> {
  const display: Record<string, string> = cfg.display.startsWith(':')
    ? // GTK on X (or Xwayland): the countdown's override-redirect window stays above the viewer there.
      { DISPLAY: cfg.display, GDK_BACKEND: 'x11' }
    : { WAYLAND_DISPLAY: cfg.display, XDG_RUNTIME_DIR: process.env.TABULA_KIOSK_RUNTIME_DIR ?? '/run/tabula-kiosk' };
  return {
    ...display,
    HOME: home,
    XDG_CONFIG_HOME: `${home}/.config`,
    XDG_CACHE_HOME: `${home}/.cache`,
    XDG_DATA_HOME: `${home}/.local/share`,
    LANG: process.env.LANG ?? 'C.UTF-8',
    NO_AT_BRIDGE: '1',
  };
}

function activitySource(cfg: StationConfig, logger: Logger): ActivitySource {
  switch (cfg.activity) {
    case 'x11':
      return new X11IdleActivity({ display: cfg.display, logger });
    case 'evdev':
      return new EvdevActivity({ logger });
    case 'none':
      return { start: () => undefined, stop: () => undefined };
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: STATION_PATHS.config },
      'card-config': { type: 'string', default: STATION_PATHS.card },
      'lease-dir': { type: 'string', default: STATION_PATHS.leaseDir },
      'state-dir': { type: 'string', default: '/run/tabula-station' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const logger = new JournalLogger();
  const paths = { config: values.config!, card: values['card-config']!, leaseDir: values['lease-dir']! };
  const settings = await StationSettings.load(new FileSettingsSource(paths, logger), logger);
  const cfg = () => settings.current;
  const { uid, gid, home } = await lookupAccount(cfg().kioskUser);
  const account: KioskAccount = { name: cfg().kioskUser, uid, gid, home, env: kioskEnv(cfg(), home) };
  const kiosk = new ProcKioskUser({ account });
  const screen = new GjsScreen({ program: cfg().screenProgram, account, logger });
  const agent = new StationAgent({
    config: cfg,
    refreshConfig: () => settings.refresh(),
    link: new TcpServerLink(() => ({ host: requireServer(cfg()), port: cfg().signalPort })),
    screen,
    viewer: new RemoteViewer({ account, logger, program: () => cfg().viewer, fullscreen: () => cfg().viewerFullscreen, usb: () => cfg().usb }),
    kiosk,
    activity: activitySource(cfg(), logger),
    pictures: new FolderPictures({
      slideshowFolder: () => cfg().backgroundFolder,
      animationFolder: () => cfg().animationFolder,
      slideshowUrl: () => slideshowListUrl(cfg()),
      cacheDir: `${values['state-dir']}/slideshow`,
      logger,
    }),
    clock: new SystemClock(),
    logger,
  });

  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stop.abort());
  process.on('SIGHUP', () => void settings.refresh());
  logger.notice('station-started', { station: cfg().stationName, server: cfg().serverAddress, origin: cfg().serverOrigin, protocol: cfg().protocol, kiosk: account.name });
  await agent.run(stop.signal);
  logger.notice('station-stopped');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    const err = asStationError(e);
    process.stderr.write(`<3>event=station-failed code=${err.code} error=${JSON.stringify(err.message)}\n`);
    process.exit(err.code === 'config-invalid' || err.code === 'config-unreadable' ? 2 : 1);
  },
);
