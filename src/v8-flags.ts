/**
 * V8 settings for ctbridge's long-running processes. Imported first by
 * cli/main.ts, so they apply before any other module runs.
 *
 * `--no-allocation-site-pretenuring`: V8 counts, per allocation site (an
 * object or array literal), how many of its objects survive a young-generation
 * GC; when almost all do, it allocates that site's objects in the old
 * generation from then on, and never goes back. During a burst of concurrent
 * exchanges (1,000 long-polls held open) the objects of each exchange live for
 * seconds, so sites on the per-request path are switched to the old
 * generation. After the burst, each small request then leaves old objects
 * that point to its young ones: those survive young GCs, are promoted, and go
 * only in full GCs. Survival went from 2% to over 90% on those sites and the
 * process stayed 25-40% slower per request until it restarted
 * (docs/performance.md, "Bursts of concurrent exchanges"). Without
 * pretenuring, the objects of a burst are copied once more before they reach
 * the old generation, and nothing changes for the requests after it.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-allocation-site-pretenuring');
