/**
 * The relay's Dockerfile, checked without a container engine (none here can
 * pull a base image): stages, non-root user, what it copies exists, the
 * entry point is in the package, and the health check asks the admin
 * listener's default address.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The relay's admin listener default (admin.listen) that serves GET /readyz. */
const RELAY_ADMIN_DEFAULT = '127.0.0.1:9090';
const RELAY_PORT_IN_CONTAINER = 8080;

interface Instruction {
  op: string;
  args: string;
}

function parseDockerfile(text: string): Instruction[][] {
  const joined = text.replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line)!;
    if (op!.toUpperCase() === 'FROM') stages.push([]);
    stages.at(-1)?.push({ op: op!.toUpperCase(), args: args!.trim() });
  }
  return stages;
}

describe('Dockerfile', () => {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const runtime = stages.at(-1)!;
  const get = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op).map((i) => i.args);

  it('is multi-stage: a build stage compiles and packs, the runtime stage installs without dev dependencies', () => {
    expect(stages.length).toBe(2);
    const build = stages[0]!;
    expect(get(build, 'FROM')[0]).toMatch(/ AS build$/);
    expect(get(build, 'RUN').join('\n')).toMatch(/npm ci/);
    expect(get(build, 'RUN').join('\n')).toMatch(/npm pack/);
    expect(get(runtime, 'COPY')).toContain('--from=build /tmp/ctbridge.tgz /tmp/ctbridge.tgz');
    expect(get(runtime, 'RUN').join('\n')).toMatch(/npm install --omit=dev/);
  });

  it('copies only files that exist in the repository', () => {
    for (const copy of get(stages[0]!, 'COPY')) {
      const parts = copy.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) expect(existsSync(join(ROOT, src)), src).toBe(true);
    }
  });

  it('runs as the non-root user node, starting the relay from the installed package with the mounted config', () => {
    expect(get(runtime, 'USER')).toEqual(['node']);
    const entry = JSON.parse(get(runtime, 'ENTRYPOINT')[0]!) as string[];
    expect(entry[0]).toBe('node');
    expect(entry[1]).toBe('/opt/ctbridge/node_modules/ctbridge/bin/ctbridge.js');
    expect(JSON.parse(get(runtime, 'CMD')[0]!)).toEqual(['relay', '--config', '/etc/ctbridge/relay.yaml']);
    expect(get(runtime, 'EXPOSE')).toEqual([String(RELAY_PORT_IN_CONTAINER)]);
  });

  it('health check: node fetch of GET /readyz on the relay admin listener default', () => {
    const [hc] = get(runtime, 'HEALTHCHECK');
    expect(hc).toMatch(/--interval=\d+s/);
    const cmd = JSON.parse(hc!.slice(hc!.indexOf('CMD') + 3).trim()) as string[];
    expect(cmd.slice(0, 2)).toEqual(['node', '-e']);
    expect(cmd[2]).toContain(`fetch('http://${RELAY_ADMIN_DEFAULT}/readyz')`);
    expect(cmd[2]).toContain('process.exit(r.ok ? 0 : 1)');
  });

  it('the entry point is in the packed package', () => {
    const [packed] = JSON.parse(
      execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' }),
    ) as { files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path);
    expect(files).toContain('bin/ctbridge.js');
    expect(files).toContain('dist/cli/main.js');
    expect(files).toContain('deploy/relay.example.yaml');
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('bench/') || f.startsWith('.ci/') || f.startsWith('dist/sea/') || f.endsWith('.ts'))).toEqual([]);
  });
});
