// PROPPATCH (RFC 4918 §9.2): the set/remove instructions of a propertyupdate in document order,
// folded into one atomic change of dead properties; live properties are protected (403) and then
// nothing is applied (424 for the others).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Core } from '../../app.js';
import { SluiceError } from '../../errors.js';
import type { AttributeChange } from '../../storage/namespace-store.js';
import { principalOf } from '../authenticate.js';
import { hrefOf, multistatus, responseElement } from './multistatus.js';
import { readTextBody, writePathOf } from './request.js';
import { isLiveProperty } from './properties.js';
import { childElements, innerXml, isDav, nameOfElement, parseXml, propElement, propKey, type PropName } from './xml.js';

/** Largest accepted value of one dead property, bytes of markup. */
export const MAX_PROPERTY_BYTES = 64 * 1024;

export interface PropertyInstruction {
  op: 'set' | 'remove';
  prop: PropName;
  /** Inner markup of the property element (set only). */
  xml: string;
}

export function parsePropertyUpdate(body: string): PropertyInstruction[] {
  if (body.trim() === '') throw new SluiceError('BAD_XML', 'PROPPATCH needs a DAV:propertyupdate body');
  const root = parseXml(body).documentElement!;
  if (!isDav(root, 'propertyupdate')) throw new SluiceError('BAD_XML', 'PROPPATCH body must be a DAV:propertyupdate element');
  const out: PropertyInstruction[] = [];
  for (const instruction of childElements(root)) {
    const op = isDav(instruction, 'set') ? 'set' : isDav(instruction, 'remove') ? 'remove' : undefined;
    if (!op) continue;
    for (const prop of childElements(instruction).filter((c) => isDav(c, 'prop'))) {
      for (const el of childElements(prop)) {
        const xml = op === 'set' ? innerXml(el) : '';
        if (Buffer.byteLength(xml) > MAX_PROPERTY_BYTES)
          throw new SluiceError('PAYLOAD_TOO_LARGE', `value of ${propKey(nameOfElement(el))} exceeds ${MAX_PROPERTY_BYTES} bytes`);
        out.push({ op, prop: nameOfElement(el), xml });
      }
    }
  }
  if (out.length === 0) throw new SluiceError('BAD_XML', 'DAV:propertyupdate holds no set or remove instruction');
  return out;
}

export interface PropPatchPlan {
  /** Status of each distinct property, in first-mention order. */
  statuses: { prop: PropName; status: number }[];
  /** The change to apply, or undefined when any instruction failed (then nothing is applied). */
  change: AttributeChange | undefined;
}

/** Folds the instructions in document order: the last one on a property wins. */
export function planPropPatch(instructions: readonly PropertyInstruction[]): PropPatchPlan {
  const finalState = new Map<string, PropertyInstruction>();
  const refused = new Set<string>();
  for (const i of instructions) {
    const key = propKey(i.prop);
    if (isLiveProperty(i.prop)) refused.add(key);
    finalState.delete(key);
    finalState.set(key, i);
  }
  const firstMention = new Map<string, PropName>();
  for (const i of instructions) if (!firstMention.has(propKey(i.prop))) firstMention.set(propKey(i.prop), i.prop);
  const failed = refused.size > 0;
  const statuses = [...firstMention].map(([key, prop]) => ({ prop, status: refused.has(key) ? 403 : failed ? 424 : 200 }));
  if (failed) return { statuses, change: undefined };
  const change: AttributeChange = { setDeadProps: [], removeDeadProps: [] };
  for (const i of finalState.values()) {
    if (i.op === 'set') change.setDeadProps!.push({ ns: i.prop.ns, name: i.prop.name, xml: i.xml });
    else change.removeDeadProps!.push({ ns: i.prop.ns, name: i.prop.name });
  }
  return { statuses, change };
}

/** The propstat groups of a PROPPATCH response. */
export function propPatchGroups(plan: PropPatchPlan): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const { prop, status } of plan.statuses) {
    const list = groups.get(status) ?? [];
    list.push(propElement(prop, undefined));
    groups.set(status, list);
  }
  return groups;
}

export async function proppatch(core: Core, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const p = principalOf(req, core.tokens);
  const path = writePathOf(req);
  const instructions = parsePropertyUpdate(await readTextBody(req));
  const entry = await core.namespace.stat(p, path);
  const plan = planPropPatch(instructions);
  if (plan.change) await core.namespace.changeAttributes(p, path, plan.change);
  const body = multistatus([responseElement(hrefOf(entry), propPatchGroups(plan))]);
  return reply.code(207).type('application/xml; charset=utf-8').send(body);
}
