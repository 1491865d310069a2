// Pipeline runs: the steps of a pipeline one after another, each step's result the next step's input
// (merged with the step's params), each step retried per its policy. The run record names every
// activation; a run left unfinished by a crash resumes at its first unfinished step, and a step whose
// last call had succeeded takes that call's result instead of calling again.
import type { Logger } from 'pino';
import type { Principal } from '../auth/scopes.js';
import { SluiceError } from '../errors.js';
import type { Invoker } from '../functions/invoker.js';
import { parseFunctionRef } from '../functions/registry.js';
import type { Activation } from '../functions/types.js';
import type { TriggerStore } from './trigger-store.js';
import type { Pipeline, PipelineRun, PipelineRunStep } from './types.js';

export function stepInput(previous: unknown, params: Record<string, unknown>): unknown {
  if (Object.keys(params).length === 0) return previous;
  if (previous !== null && typeof previous === 'object' && !Array.isArray(previous)) return { ...params, ...(previous as object) };
  return { ...params, input: previous };
}

export class PipelineRunner {
  constructor(private readonly deps: { store: TriggerStore; invoker: Invoker; log: Logger }) {}

  newRun(id: string, pipeline: Pipeline, input: unknown, cause: string, subject: string): PipelineRun {
    return {
      id,
      pipeline: pipeline.name,
      status: 'running',
      cause,
      subject,
      input,
      steps: pipeline.steps.map((s) => ({ function: s.function, status: 'pending', attempts: 0, activations: [] })),
      created: new Date().toISOString(),
    };
  }

  /**
   * The run with this id if a restart cut it off (still `running`, nobody running it) and it still fits
   * the pipeline's steps; one that no longer fits is closed as failed and undefined returned.
   */
  async interrupted(id: string, pipeline: Pipeline): Promise<PipelineRun | undefined> {
    const run = await this.deps.store.getRun(id);
    if (run?.status !== 'running') return undefined;
    const fits =
      run.pipeline === pipeline.name &&
      run.steps.length === pipeline.steps.length &&
      run.steps.every((s, i) => s.function === pipeline.steps[i]!.function);
    if (fits) return run;
    run.status = 'failed';
    run.error = 'interrupted by a restart, and not resumed: the pipeline changed since';
    run.ended = new Date().toISOString();
    await this.deps.store.saveRun(run);
    return undefined;
  }

  /** A step a restart cut off: its last call counts if it succeeded; if not, that attempt does not count. */
  private takeUp(step: PipelineRunStep): void {
    const lastId = step.activations.at(-1);
    const last = lastId === undefined ? undefined : this.deps.invoker.find(lastId);
    if (last?.status === 'success') {
      step.status = 'succeeded';
      step.result = last.result;
      return;
    }
    step.status = 'pending';
    step.attempts = Math.max(0, step.attempts - 1);
  }

  /** Runs (or resumes) a run to its end; the record is saved after every step. */
  async run(pipeline: Pipeline, run: PipelineRun, principal: Principal): Promise<PipelineRun> {
    await this.deps.store.saveRun(run);
    let input = run.input;
    for (let i = 0; i < pipeline.steps.length; i++) {
      const spec = pipeline.steps[i]!;
      const step = run.steps[i]!;
      if (step.status === 'running') this.takeUp(step);
      if (step.status === 'succeeded') {
        input = step.result;
        continue;
      }
      const { name, ref } = parseFunctionRef(spec.function);
      let last: Activation | undefined;
      let refused: string | undefined;
      while (step.attempts < spec.maxAttempts) {
        step.attempts++;
        step.status = 'running';
        refused = undefined;
        // A call refused before it runs (no such function, queue full) is a failed attempt like any other.
        last = await this.deps.invoker
          .invoke({
            name,
            ...(ref !== undefined ? { ref } : {}),
            input: stepInput(input, spec.params),
            principal,
            blocking: true,
            cause: `pipeline:${pipeline.name}:${run.id}:${i + 1}`,
            untilDone: {
              accepted: (a) => {
                step.activations.push(a.id);
                void this.deps.store.saveRun(run);
              },
            },
          })
          .catch((e: unknown) => {
            refused = e instanceof SluiceError ? `${e.code}: ${e.message}` : (e as Error).message;
            return undefined;
          });
        if (last?.status === 'success') break;
        const error = refused ?? last?.error?.message;
        this.deps.log.info({ run: run.id, step: i + 1, attempt: step.attempts, error }, 'pipeline step failed');
      }
      if (last?.status !== 'success') {
        step.status = 'failed';
        step.error = refused ?? (last?.error ? `${last.error.code}: ${last.error.message}` : 'not run');
        run.status = 'failed';
        run.error = `step ${i + 1} (${spec.function}) failed after ${step.attempts} attempt(s): ${step.error}`;
        run.ended = new Date().toISOString();
        await this.deps.store.saveRun(run);
        return run;
      }
      step.status = 'succeeded';
      step.result = last.result;
      input = last.result;
      await this.deps.store.saveRun(run);
    }
    run.status = 'succeeded';
    run.result = input;
    run.ended = new Date().toISOString();
    await this.deps.store.saveRun(run);
    return run;
  }
}
