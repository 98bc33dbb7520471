/** The admin pages' shared reads. */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import type { UserPage, UsersQuery } from "@/api/types";
import { api } from "@/lib/api";

export const USERS_PAGE = 25;

/** `GET /admin/users`: one page of accounts matching `search`. */
export function useUsers(search: UsersQuery) {
  return useQuery({
    queryKey: ["admin", "users", search],
    queryFn: ({ signal }) => api<UserPage>("/admin/users", { query: { limit: USERS_PAGE, offset: 0, ...search }, signal }),
    placeholderData: keepPreviousData,
  });
}
