// User administration. The list/create/update endpoints are newer than some servers: pages
// show "not available on this server" when the route is missing.
import { api } from '@/app/api';
import type { Items, Role, User } from '@/shared/api/types';

export interface NewUser {
  email: string;
  password: string;
  role: Role;
}

export interface UserChange {
  id: string;
  role?: Role;
  disabled?: boolean;
}

export const usersApi = api.injectEndpoints({
  endpoints: (build) => ({
    listUsers: build.query<Items<User>, void>({
      query: () => '/users',
      providesTags: ['User'],
    }),
    createUser: build.mutation<User, NewUser>({
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
