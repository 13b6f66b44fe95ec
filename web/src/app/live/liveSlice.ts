// The state of the live connection, for the indicator in the header.
import { createSlice, type PayloadAction } from '@reduxjs/toolkit';
import type { TaskEvent } from '@/shared/api/events';
import type { LiveStatus } from './connection';
import type { TransportKind } from './transports';

export interface LiveState {
  status: LiveStatus;
  transport: TransportKind | null;
  detail: string | null;
}

const initialState: LiveState = { status: 'idle', transport: null, detail: null };

export const liveSlice = createSlice({
  name: 'live',
  initialState,
  reducers: {
    statusChanged(state, action: PayloadAction<{ status: LiveStatus; transport: TransportKind | null; detail?: string }>) {
      state.status = action.payload.status;
      state.transport = action.payload.transport;
      state.detail = action.payload.detail ?? null;
    },
    /** Dispatched for every new task event (after de-duplication). */
    eventReceived(_state, _action: PayloadAction<TaskEvent>) {},
    watchTask(_state, _action: PayloadAction<{ taskId: string; since?: number }>) {},
    unwatchTask(_state, _action: PayloadAction<{ taskId: string }>) {},
  },
});

export const { statusChanged, eventReceived, watchTask, unwatchTask } = liveSlice.actions;

export const selectLive = (state: { live: LiveState }) => state.live;
