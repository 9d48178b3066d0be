/** A Temporal client for operator commands, connected to the config's Temporal server. */
import { Client, Connection } from '@temporalio/client';
import type { ClusterConfig } from '../config/schema';
import { temporalEndpoint, type TemporalEndpoint } from '../stack/endpoints';

export interface OperatorClient {
  client: Client;
  endpoint: TemporalEndpoint;
  close(): Promise<void>;
}

export async function connectClient(config: ClusterConfig): Promise<OperatorClient> {
  const endpoint = temporalEndpoint(config);
  const connection = await Connection.connect({ address: endpoint.address, connectTimeout: 10_000 });
  return { client: new Client({ connection, namespace: endpoint.namespace }), endpoint, close: () => connection.close() };
}

/** Link to a workflow in the Temporal UI, when the UI's address is known. */
export function workflowUrl(endpoint: TemporalEndpoint, workflowId: string, runId?: string): string | undefined {
  if (!endpoint.uiUrl) return undefined;
  const base = `${endpoint.uiUrl}/namespaces/${encodeURIComponent(endpoint.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}
