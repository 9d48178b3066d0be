/**
 * The main job on the embedded defaults: bring the stack and the local cluster up
 * (Apache satellites behind HAProxy), run the cluster's workers, record the class list
 * (enrollClass), and say where to look. The lesson pipeline (prepareLesson) joins here
 * once it exists.
 */
import type { ClusterConfig } from '../config/schema';
import type { Logger } from '../logging';
import { stackUp } from '../stack/stack';
import { clusterUp } from '../cluster/localCluster';
import { allRoles } from '../workers/roles';
import { startWorkers } from '../workers/runWorkers';
import { connectClient, workflowUrl } from './client';
import { enrollClass } from './enroll';

export interface MainJobResult {
  temporalAddress: string;
  temporalUi?: string;
  workflowId: string;
  runId: string;
  enrolled: number;
  workflowUrl?: string;
}

export async function runMainJob(config: ClusterConfig, io: { log: Logger; out: (line: string) => void }): Promise<MainJobResult> {
  io.out(`lessonplan: cluster ${config.cluster}`);
  await stackUp(config, io.log);
  await clusterUp(config, io.log);
  const workers = await startWorkers(config, allRoles(config), io.log);
  const operator = await connectClient(config);
  try {
    io.out(`Temporal UI: ${operator.endpoint.uiUrl ?? '(not embedded: see your Temporal server)'}`);
    const { workflowId, runId, result } = await enrollClass(operator.client, config);
    const url = workflowUrl(operator.endpoint, workflowId, runId);
    const machines = result.enrolled.length + result.updated.length + result.unchanged.length;
    io.out(`class list recorded: ${machines} machines (${result.enrolled.length} new, ${result.retired.length} retired)`);
    io.out(`workflow ${workflowId}${url ? `: ${url}` : ''}`);
    if (config.loadBalancer.kind === 'haproxy') io.out(`users' entry (HAProxy): http://127.0.0.1:${config.loadBalancer.frontendPort}/`);
    io.out('the stack keeps running; stop it with: npm run lessonplan -- dev down');
    return {
      temporalAddress: operator.endpoint.address,
      temporalUi: operator.endpoint.uiUrl,
      workflowId,
      runId,
      enrolled: machines,
      workflowUrl: url,
    };
  } finally {
    await operator.close();
    workers.shutdown();
    await workers.done;
  }
}
