/**
 * Filter/sort fields of the task and job lists (TaskViewSet / JobViewSet `filter_fields`,
 * `simple_filters`, `search_fields` in CVAT 2.73).
 */
import type { Deployment, EmulatedJob, EmulatedTask } from './model.js';
import type { ListSpec } from './query.js';
import { jobStatus, taskStatus } from './serialize.js';

export const taskListSpec = (): ListSpec<EmulatedTask> => ({
  fields: {
    id: { get: (t) => t.id, type: 'number' },
    name: { get: (t) => t.name, type: 'string' },
    owner: { get: (t) => t.owner, type: 'string' },
    assignee: { get: (t) => t.assignee, type: 'string' },
    status: { get: (t) => taskStatus(t), type: 'string' },
    project_id: { get: (t) => t.projectId, type: 'number' },
    project_name: { get: (t) => (t.projectId === null ? null : `project ${t.projectId}`), type: 'string' },
    mode: { get: (t) => (t.dataId === null ? '' : t.mode), type: 'string' },
    dimension: { get: (t) => (t.mediaType === 'pointcloud' ? '3d' : '2d'), type: 'string' },
    media_type: { get: (t) => (t.dataId === null ? '' : t.mediaType === 'pointcloud' ? 'point_cloud' : 'image'), type: 'string' },
    subset: { get: (t) => t.subset, type: 'string' },
    validation_mode: { get: (t) => t.validationMode, type: 'string' },
    updated_date: { get: (t) => t.updatedMs, type: 'date' },
  },
  simpleFilters: ['name', 'owner', 'assignee', 'status', 'project_id', 'project_name', 'mode', 'dimension', 'media_type', 'subset', 'validation_mode'],
  search: (t) => [t.name, t.owner, t.assignee, t.subset, t.projectId === null ? null : `project ${t.projectId}`],
});

export const jobListSpec = (deployment: Deployment): ListSpec<EmulatedJob> => {
  const task = (j: EmulatedJob): EmulatedTask => deployment.taskOf(j);
  return {
    fields: {
      id: { get: (j) => j.id, type: 'number' },
      task_id: { get: (j) => j.taskId, type: 'number' },
      project_id: { get: (j) => task(j).projectId, type: 'number' },
      project_name: { get: (j) => (task(j).projectId === null ? null : `project ${task(j).projectId}`), type: 'string' },
      task_name: { get: (j) => task(j).name, type: 'string' },
      state: { get: (j) => j.state, type: 'string' },
      stage: { get: (j) => j.stage, type: 'string' },
      status: { get: (j) => jobStatus(j), type: 'string' },
      type: { get: (j) => j.type, type: 'string' },
      parent_job_id: { get: (j) => j.parentJobId, type: 'number' },
      assignee: { get: (j) => j.assignee, type: 'string' },
      dimension: { get: (j) => (task(j).mediaType === 'pointcloud' ? '3d' : '2d'), type: 'string' },
      mode: { get: (j) => task(j).mode, type: 'string' },
      media_type: { get: (j) => (task(j).mediaType === 'pointcloud' ? 'point_cloud' : 'image'), type: 'string' },
      updated_date: { get: (j) => j.updatedMs, type: 'date' },
    },
    simpleFilters: [
      'task_id',
      'project_id',
      'project_name',
      'task_name',
      'type',
      'state',
      'stage',
      'parent_job_id',
      'assignee',
      'dimension',
      'mode',
      'media_type',
    ],
    search: (j) => [task(j).name, j.assignee, j.state, j.stage],
  };
};
