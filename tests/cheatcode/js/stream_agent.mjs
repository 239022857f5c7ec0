// Cheatcode's web app consuming a run stream, as its code does it, over a real EventSource (npm `eventsource`).
//
//   node stream_agent.mjs <API_URL> <agent_run_id> <token>
//
// Replays, line for line in behaviour, frontend/src/lib/api/agents.ts `streamAgent` (the EventSource, its
// onmessage text checks and its onerror reconnect policy) and frontend/src/hooks/useAgentStream.ts
// `handleStreamMessage` / `finalizeStream` (what ends the stream, which frames reach the chat). Prints one JSON
// summary: how it ended, how many connections it opened, the streamed text, the messages added to the chat, and
// every error it would have shown. STREAM_TIMEOUT_MS bounds the whole run (then `ended` is "timeout").
import { EventSource } from 'eventsource';

const [apiUrl, runId, token] = process.argv.slice(2);
const summary = { ended: null, finalStatus: null, opens: 0, errors: [], chunks: [], messages: [], toolStarted: [], frames: 0 };
let source = null;
let isClosed = false;
let errorCount = 0;
const maxErrors = 5;

const done = (how) => {
  if (summary.ended) return;
  summary.ended = how;
  clearTimeout(timer);
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(0);
};
const timer = setTimeout(() => done('timeout'), Number(process.env.STREAM_TIMEOUT_MS || 30000));

// streamAgent's cleanup(), then useAgentStream's finalizeStream(status).
const cleanup = () => {
  if (source && !isClosed) {
    isClosed = true;
    source.close();
  }
};
const finalizeStream = (status) => {
  cleanup();
  summary.finalStatus = status;
  done('finalized');
};
const safeJsonParse = (text, fallback) => {
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
};

// useAgentStream.handleStreamMessage (callbacks.onMessage of streamAgent).
function handleStreamMessage(rawData) {
  if (rawData === '{"type": "status", "status": "completed", "message": "Agent run completed successfully"}') {
    return finalizeStream('completed');
  }
  if (rawData.includes('Run data not available for streaming') || rawData.includes('Stream ended with status: completed')) {
    return finalizeStream('completed');
  }
  const jsonData = safeJsonParse(rawData, null);
  if (jsonData) {
    if (jsonData.type === 'batch' && Array.isArray(jsonData.items)) {
      for (const item of jsonData.items) handleStreamMessage(JSON.stringify(item));
      return;
    }
    if (jsonData.status === 'error') return summary.errors.push(jsonData.message || 'Unknown error occurred');
    if (jsonData.type === 'control' && jsonData.action === 'stop') return finalizeStream('stopped');
    if (jsonData.type === 'warning' || jsonData.type === 'heartbeat' || jsonData.type === 'ping') return;
    if (jsonData.type === 'status' && jsonData.status === 'completed') return finalizeStream('completed');
  }
  const message = jsonData;
  if (!message) return;
  if (message.type && !['assistant', 'user', 'tool', 'system'].includes(message.type) && message.type !== 'status') return;
  const parsedContent = safeJsonParse(message.content, {});
  const parsedMetadata = safeJsonParse(message.metadata, {});
  if (message.type === 'assistant') {
    if (parsedMetadata.stream_status === 'chunk' && parsedContent.content) {
      summary.chunks.push({ sequence: message.sequence || parsedMetadata.sequence || 0, content: parsedContent.content });
    } else if (parsedMetadata.stream_status === 'complete') {
      if (message.message_id) summary.messages.push(message);
    } else if (!parsedMetadata.stream_status && message.message_id) {
      summary.messages.push(message);
    }
  } else if (message.type === 'tool') {
    const isStructuredTool =
      (parsedContent.name || parsedContent.function_name) &&
      (parsedContent.result !== undefined || parsedContent.arguments !== undefined);
    if (message.message_id && isStructuredTool) summary.messages.push(message);
  } else if (message.type === 'status') {
    if (parsedContent.status_type === 'tool_started') summary.toolStarted.push(parsedContent.function_name);
    if (parsedContent.status_type === 'thread_run_end') return finalizeStream('completed');
  } else if (message.message_id) {
    summary.messages.push(message);
  }
}

// streamAgent: new EventSource(`${API_URL}/agent-run/${id}/stream?token=`), its handlers.
const url = new URL(`${apiUrl}/agent-run/${runId}/stream`);
url.searchParams.append('token', token);
source = new EventSource(url.toString());
source.onopen = () => {
  if (isClosed) return;
  summary.opens += 1;
  errorCount = 0;
};
source.onmessage = (event) => {
  if (isClosed) return;
  summary.frames += 1;
  const rawData = event.data;
  if (rawData.includes('"type":"ping"')) return;
  if (!rawData || rawData.trim() === '') return;
  const jsonData = safeJsonParse(rawData, null);
  if (jsonData && jsonData.status === 'error') return summary.errors.push(jsonData.message || 'Unknown error occurred');
  if (rawData.includes('Agent run') && rawData.includes('not found in active runs')) {
    summary.errors.push('Agent run not found in active runs');
    cleanup();
    return finalizeStream('completed'); // onClose -> handleStreamClose -> finalizeStream('completed')
  }
  if (rawData.includes('"type":"status"') && rawData.includes('"status":"completed"')) {
    cleanup();
    return finalizeStream('completed');
  }
  if (rawData.includes('"type":"status"') && rawData.includes('"status_type":"thread_run_end"')) {
    cleanup();
    return finalizeStream('completed');
  }
  handleStreamMessage(rawData);
};
source.onerror = () => {
  if (isClosed) return;
  errorCount++;
  let shouldAttemptReconnect = true;
  if (errorCount >= maxErrors) shouldAttemptReconnect = false;
  else if (source.readyState === EventSource.CLOSED) shouldAttemptReconnect = false;
  else if (source.readyState === EventSource.CONNECTING && errorCount >= 3) shouldAttemptReconnect = false;
  if (!shouldAttemptReconnect) {
    cleanup();
    summary.errors.push(`stream closed (readyState ${source.readyState}, errors ${errorCount})`);
    return finalizeStream('completed'); // callbacks.onClose -> handleStreamClose -> finalizeStream('completed')
  }
  summary.errors.push(`reconnecting (attempt ${errorCount})`);
};
