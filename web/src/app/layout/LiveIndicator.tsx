import { useAppSelector } from '../hooks';
import { selectLive } from '../live/liveSlice';

export function LiveIndicator() {
  const live = useAppSelector(selectLive);
  const label =
    live.status === 'live'
      ? `Live · ${live.transport === 'websocket' ? 'WebSocket' : 'SSE'}`
      : live.status === 'reconnecting'
        ? 'Reconnecting…'
        : live.status === 'connecting'
          ? 'Connecting…'
          : 'Offline';
  const title =
    live.status === 'live'
      ? live.transport === 'websocket'
        ? 'Updates arrive over the WebSocket gateway.'
        : 'Updates arrive as Server-Sent Events (this server has no WebSocket gateway).'
      : (live.detail ?? 'Not receiving live updates.');
  return (
    <span className={`live-indicator live-${live.status}`} title={title} data-testid="live-indicator" data-transport={live.transport ?? ''} role="status">
      <span className="dot" aria-hidden="true" />
      <span className="live-label">{label}</span>
    </span>
  );
}
