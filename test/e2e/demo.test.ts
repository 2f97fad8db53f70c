/**
 * `npm start` runs the demo: relay, agent, sample services, and one
 * registration, fetch and push through the bridge.
 */
import { afterAll, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { runCli, stopAll } from '../helpers/processes.js';

afterAll(stopAll);

it('ctbridge demo plays registration, fetch and push through the bridge and serves the sample service', async () => {
  const demo = runCli('demo', ['demo'], { CTBRIDGE_DEMO_PORT: '0' });
  const output = await new Promise<string>((resolve, reject) => {
    let text = '';
    demo.child.stderr!.on('data', (c: string) => {
      text += c;
      if (text.includes('Check a provider yourself')) resolve(text);
    });
    demo.exited.then((code) => reject(new Error(`demo exited with ${code}: ${text}`)));
  });
  expect(output).not.toContain('✗');
  expect(output.match(/✓/g)?.length).toBe(4);
  expect(output).toMatch(/resourceInfoURL {2}http:\/\/127\.0\.0\.1:\d+\/t\/cioc\/ct\/ctfetch\.asp\?num=\[ID\]/);
  const url = /try {16}curl -s '([^']+)'/.exec(output)![1];
  expect(JSON.parse((await request(url)).text)).toMatchObject({ method: 'GET', url: '/hello?x=1' });
  demo.child.kill('SIGINT');
  expect(await demo.exited).toBe(0);
});
