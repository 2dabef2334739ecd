/**
 * Where a cloud-storage task's objects sit in its bucket, from CVAT's API alone: each
 * `frames[].name` of data meta is an object key; a frame with `related_files: n` reads n context
 * images from the directory CVAT's layout rules give (`utils/dataset_manifest/utils.py`
 * `_detect_related_images_2D/_3D`; their names are not in the API, so the expectation is "that
 * directory holds at least n objects"). The guard's cloud source (src/guard/shell/cloud-tasks.ts)
 * indexes them; which jobs and chunks read a frame comes from the guard's one mapping.
 */
import path from 'node:path';

/** The directory key of an object key ("" for the bucket root), ending in "/". */
export function directoryOf(key: string): string {
  const slash = key.lastIndexOf('/');
  return slash < 0 ? '' : key.slice(0, slash + 1);
}

/** CVAT's context-image directory of a frame (2D `dir/related_images/img_png/`; Supervisely 3D `…/related_images/X_pcd/` beside `pointcloud/`). */
export function relatedDirOf(key: string): string {
  const dir = directoryOf(key);
  const underscored = path.posix.basename(key).replace(/\./g, '_');
  if (key.toLowerCase().endsWith('.pcd') && dir.endsWith('pointcloud/')) {
    return `${dir.slice(0, -'pointcloud/'.length)}related_images/${underscored}/`;
  }
  return `${dir}related_images/${underscored}/`;
}
