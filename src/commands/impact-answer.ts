/**
 * The shape of GET /impact's answer (guard/core/impact.ts `ImpactAnswer`), checked where it
 * enters: whatever listens on the service's port may be something else, or another version.
 */
import { z } from 'zod';
import type { ImpactAnswer } from '../guard/index.js';

const id = z.number().int().positive();
const expiry = z.union([z.number(), z.literal('unknown')]);

const impactAnswerShape = z.object({
  files: z.number().int().nonnegative(),
  tasks: z.array(
    z.object({
      taskId: id,
      taskName: z.string().optional(),
      frames: z.array(z.number().int().nonnegative()),
      jobs: z.array(z.object({ jobId: id, type: z.string(), chunks: z.array(z.number().int().nonnegative()), expiresAt: expiry })),
      expiresAt: expiry,
      expiryNote: z.string().optional(),
      files: z.number().int().nonnegative(),
    }),
  ),
  filesOf: z.array(z.array(z.string())),
});

/** The answer, or undefined when it is not one. */
export function parseImpactAnswer(value: unknown): ImpactAnswer | undefined {
  const parsed = impactAnswerShape.safeParse(value);
  if (!parsed.success || parsed.data.filesOf.length !== parsed.data.tasks.length) return undefined;
  const tasks = parsed.data.tasks.map(({ taskName, expiryNote, ...task }) => ({
    ...task,
    ...(taskName !== undefined ? { taskName } : {}),
    ...(expiryNote !== undefined ? { expiryNote } : {}),
  }));
  return { files: parsed.data.files, tasks, filesOf: parsed.data.filesOf };
}
