// Fragments, a @connection and a query as a Relay app writes them; relay-compiler checks them against
// schema.graphql (tests/clients/test_codegen.py). `graphql` is Relay's tag, read by the compiler, never executed here.
declare function graphql(strings: TemplateStringsArray): unknown;

export const threadItem = graphql`
  fragment ThreadList_thread on Thread {
    id
    title
    createdAt
  }
`;

export const projectThreads = graphql`
  fragment ThreadList_project on Project
  @argumentDefinitions(first: { type: "Int", defaultValue: 2 }, after: { type: "String" }) {
    threads(first: $first, after: $after) @connection(key: "ThreadList_threads") {
      edges {
        node {
          ...ThreadList_thread
        }
      }
    }
  }
`;

export const projectQuery = graphql`
  query ThreadListQuery($id: ID!) {
    project(id: $id) {
      name
      ...ThreadList_project
    }
  }
`;
