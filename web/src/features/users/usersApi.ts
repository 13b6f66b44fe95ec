// User administration (admins only). Older servers lack these routes: pages then show
// "not available on this server".
import { api } from '@/app/api';
import type { CreateUserBody, Items, UpdateUserBody, User } from '@/shared/api/types';

export type UserChange = UpdateUserBody & { id: string };

export const usersApi = api.injectEndpoints({
  endpoints: (build) => ({
    listUsers: build.query<Items<User>, void>({
      query: () => '/users',
      providesTags: ['User'],
    }),
    createUser: build.mutation<User, CreateUserBody>({
      query: (body) => ({ url: '/users', method: 'POST', body }),
      invalidatesTags: ['User'],
    }),
    updateUser: build.mutation<User, UserChange>({
      query: ({ id, ...body }) => ({ url: `/users/${encodeURIComponent(id)}`, method: 'PATCH', body }),
      invalidatesTags: ['User'],
    }),
  }),
});

export const { useListUsersQuery, useCreateUserMutation, useUpdateUserMutation } = usersApi;
