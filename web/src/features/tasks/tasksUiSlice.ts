// UI-only state of the tasks feature: the tasks submitted from this tab, newest first, so the
// submit page can show them live after the form is reset.
import { createSlice, type PayloadAction } from '@reduxjs/toolkit';

export interface TasksUiState {
  recentlySubmitted: string[];
}

const initialState: TasksUiState = { recentlySubmitted: [] };

export const tasksUiSlice = createSlice({
  name: 'tasksUi',
  initialState,
  reducers: {
    submitted(state, action: PayloadAction<string>) {
      state.recentlySubmitted = [action.payload, ...state.recentlySubmitted.filter((id) => id !== action.payload)].slice(0, 5);
    },
  },
});

export const { submitted } = tasksUiSlice.actions;
