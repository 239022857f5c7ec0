// usePaginationFragment's fragment: @refetchable needs the Node interface and Query.node(id:) (issue 15 item 8).
// `graphql` is Relay's tag, read by the compiler, never executed here.
declare function graphql(strings: TemplateStringsArray): unknown;

export const threadItem = graphql`
  fragment ProjectThreads_thread on Thread {
    id
    title
    createdAt
  }
`;

export const projectThreads = graphql`
  fragment ProjectThreads_project on Project
  @argumentDefinitions(first: { type: "Int", defaultValue: 2 }, after: { type: "String" })
  @refetchable(queryName: "ProjectThreadsPaginationQuery") {
    threads(first: $first, after: $after) @connection(key: "ProjectThreads_threads") {
      edges {
        node {
          ...ProjectThreads_thread
        }
      }
    }
  }
`;

export const projectQuery = graphql`
  query ProjectThreadsQuery($id: ID!) {
    project(id: $id) {
      name
      ...ProjectThreads_project
    }
  }
`;
