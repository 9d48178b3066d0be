/**
 * Hosts of a test's own: Linux network namespaces on a bridge of their own, each with its
 * own address, reached from this process through the bridge's address. A host is cut off
 * by taking its link down (its processes keep running, as on a real partition) and healed
 * by bringing it up. Needs root; everything is removed by destroy().
 */
import { randomBytes } from 'node:crypto';
import { execa, type Options, type ResultPromise } from 'execa';

export interface TestHost {
  name: string;
  /** Its network namespace. */
  ns: string;
  /** Its address on the test's network. */
  ip: string;
  /** The host end of its link, in this namespace (down: the host is cut off). */
  link: string;
}

const ip = (...args: string[]) => execa('ip', args);

export class TestHosts {
  readonly hosts = new Map<string, TestHost>();
  private readonly id = randomBytes(2).toString('hex');
  private readonly bridge = `lpbr${this.id}`;
  /** A /24 of the 10.231.0.0/16 block, chosen at random per run (create() fails if another run holds it). */
  private readonly subnet = `10.231.${randomBytes(1)[0]! % 250}`;
  private readonly processes: ResultPromise[] = [];

  /** This process's own address on the network (the bridge's). */
  get gateway(): string {
    return `${this.subnet}.1`;
  }

  async create(): Promise<void> {
    const taken = await ip('-4', 'route', 'show', `${this.subnet}.0/24`);
    if (taken.stdout.trim()) throw new Error(`${this.subnet}.0/24 is in use on this machine (${taken.stdout.trim()}); run the test again`);
    await ip('link', 'add', this.bridge, 'type', 'bridge');
    await ip('addr', 'add', `${this.gateway}/24`, 'dev', this.bridge);
    await ip('link', 'set', this.bridge, 'up');
  }

  async add(name: string): Promise<TestHost> {
    const index = this.hosts.size + 2;
    const host: TestHost = { name, ns: `lp${this.id}-${name}`, ip: `${this.subnet}.${index}`, link: `lp${this.id}h${index}` };
    const inside = `lp${this.id}n${index}`;
    // Known before it is made, so that destroy() removes what a failed step left.
    this.hosts.set(name, host);
    await ip('netns', 'add', host.ns);
    await ip('link', 'add', host.link, 'type', 'veth', 'peer', 'name', inside);
    await ip('link', 'set', inside, 'netns', host.ns);
    await ip('link', 'set', host.link, 'master', this.bridge);
    await ip('link', 'set', host.link, 'up');
    await ip('netns', 'exec', host.ns, 'ip', 'link', 'set', 'lo', 'up');
    await ip('netns', 'exec', host.ns, 'ip', 'addr', 'add', `${host.ip}/24`, 'dev', inside);
    await ip('netns', 'exec', host.ns, 'ip', 'link', 'set', inside, 'up');
    await ip('netns', 'exec', host.ns, 'ip', 'route', 'add', 'default', 'via', this.gateway);
    return host;
  }

  host(name: string): TestHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no test host ${name}`);
    return host;
  }

  /** Runs a program on a host and waits for it. */
  run(name: string, file: string, args: string[], options: Options = {}) {
    return execa('ip', ['netns', 'exec', this.host(name).ns, file, ...args], options);
  }

  /** Starts a long-running program on a host; destroy() stops it. */
  start(name: string, file: string, args: string[], options: Options = {}): ResultPromise {
    const child = execa('ip', ['netns', 'exec', this.host(name).ns, file, ...args], { reject: false, ...options });
    this.processes.push(child);
    return child;
  }

  async cut(name: string): Promise<void> {
    await ip('link', 'set', this.host(name).link, 'down');
  }

  async heal(name: string): Promise<void> {
    await ip('link', 'set', this.host(name).link, 'up');
  }

  /** Stops what start() started (SIGTERM, then SIGKILL after 20 s), then removes the namespaces and the bridge. */
  async destroy(): Promise<void> {
    for (const child of this.processes.reverse()) {
      child.kill('SIGTERM');
      await Promise.race([child, new Promise((r) => setTimeout(r, 20_000))]);
      child.kill('SIGKILL');
    }
    for (const host of this.hosts.values()) {
      // Whatever still runs in the namespace (a PostgreSQL it started) goes with it.
      const pids = await ip('netns', 'pids', host.ns).then(
        (r) => r.stdout.split('\n').filter(Boolean),
        () => [],
      );
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await ip('netns', 'del', host.ns).catch(() => undefined);
      await ip('link', 'del', host.link).catch(() => undefined);
    }
    await ip('link', 'del', this.bridge).catch(() => undefined);
  }
}
