// A frontend's code over the generated types (clients/operations -> clients/generated), compiled with
// `tsc --strict`: when the schema changes a type these operations read, this stops compiling.
import { ApolloClient, InMemoryCache } from '@apollo/client/core';
import { Client, cacheExchange, fetchExchange } from '@urql/core';

import {
  DeleteProjectDocument,
  MeDocument,
  ProjectThreadsDocument,
  RunEventsDocument,
  type DeleteProjectMutation,
  type ErrorCode,
  type RunEventsSubscription,
  type ThreadItemFragment,
} from '../generated/graphql';

export const urql = (url: string, token: string): Client =>
  new Client({ url, exchanges: [cacheExchange, fetchExchange], fetchOptions: { headers: { authorization: `Bearer ${token}` } } });

export const apollo = (uri: string): ApolloClient<unknown> => new ApolloClient({ uri, cache: new InMemoryCache() });

export async function threadPage(client: Client, id: string, after: string | null): Promise<ThreadItemFragment[]> {
  const result = await client.query(ProjectThreadsDocument, { id, first: 2, after }).toPromise();
  const edges = result.data?.project?.threads.edges ?? []; // project: null when it is not the caller's
  return edges.map((edge) => edge.node);
}

export async function myEmail(client: ApolloClient<unknown>): Promise<string> {
  const { data } = await client.query({ query: MeDocument });
  return data.me.email ?? '(hidden)';
}

export async function deleteProject(client: Client, id: string): Promise<string> {
  const result = await client.mutation(DeleteProjectDocument, { id }).toPromise();
  return result.data ? outcome(result.data) : 'network error';
}

function outcome(result: DeleteProjectMutation): string {
  const deleted = result.deleteProject;
  switch (deleted.__typename) {
    case 'DeleteProjectPayload':
      return `deleted ${deleted.deletedId}`;
    case 'NotFoundError': {
      const code: ErrorCode = deleted.code; // an enum of the codes REST sends, not any string
      return code === 'NOT_FOUND' ? `not found: ${deleted.message}` : `${code}: ${deleted.message}`;
    }
    default:
      return deleted.__typename;
  }
}

export function follow(client: Client, id: string, onEvent: (sequence: number, text: string) => void): () => void {
  const { unsubscribe } = client.subscription(RunEventsDocument, { id, after: 0 }).subscribe((result) => {
    const event: RunEventsSubscription['runEvents'] | undefined = result.data?.runEvents;
    if (event) onEvent(event.sequence, describe(event.data));
  });
  return unsubscribe;
}

// RunEvent.data is a union: the switch narrows each member, and a status is a RunStatus, not any string.
function describe(data: RunEventsSubscription['runEvents']['data']): string {
  if (!data) return '(unreadable event)';
  switch (data.__typename) {
    case 'ContentEvent':
      return data.content;
    case 'StatusEvent': {
      const finished: boolean = data.status === 'completed' || data.status === 'failed' || data.status === 'stopped';
      return finished ? `ended: ${data.status}` : data.status;
    }
    case 'ToolCallEvent':
      return `calling ${data.tool}`;
    default:
      return data.__typename;
  }
}
