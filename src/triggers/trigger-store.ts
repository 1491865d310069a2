// Port: where triggers, their deliveries, pipelines and pipeline runs live.
import type { Delivery, Pipeline, PipelineRun, Trigger } from './types.js';

export interface DeliveryCounts {
  pending: number;
  running: number;
  succeeded: number;
  dead: number;
}

export interface TriggerStore {
  create(t: Trigger): Promise<void>;
  get(idOrName: string): Promise<Trigger | undefined>;
  list(): Promise<Trigger[]>;
  setEnabled(id: string, enabled: boolean): Promise<void>;
  remove(id: string): Promise<void>;
  /**
   * Records a delivery for each matching event and moves the trigger's position past the events read,
   * in one transaction. A delivery that exists already (same trigger and event) is kept as it is.
   */
  advance(triggerId: string, position: number, matched: { event: number; path: string }[]): Promise<void>;
  /** Deliveries not finished (pending or running), oldest event first. */
  open(triggerId: string): Promise<Delivery[]>;
  /** Records a delivery's state; may be written in a later batch. */
  update(d: Delivery): Promise<void>;
  /**
   * Records it before returning, in commit order with everything written after: a delivery names its
   * activation before that activation can be recorded as a success, so a restart never runs it again.
   */
  updateNow(d: Delivery): Promise<void>;
  deadLetters(triggerId: string, limit: number): Promise<Delivery[]>;
  /** Dead deliveries (all, or those of the given events) back to pending with fresh attempts; returns them. */
  replay(triggerId: string, events?: number[]): Promise<Delivery[]>;
  counts(triggerId: string): Promise<DeliveryCounts>;
  savePipeline(p: Pipeline): Promise<void>;
  getPipeline(name: string): Promise<Pipeline | undefined>;
  listPipelines(): Promise<Pipeline[]>;
  removePipeline(name: string): Promise<boolean>;
  saveRun(run: PipelineRun): Promise<void>;
  getRun(id: string): Promise<PipelineRun | undefined>;
  listRuns(pipeline: string, limit: number): Promise<PipelineRun[]>;
}
