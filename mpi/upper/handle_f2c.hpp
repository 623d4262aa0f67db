// SPDX-License-Identifier: Apache-2.0
// Fortran integer handles (MPI_Fint) <-> the upper half's C handles (record addresses), the
// C side of MPI_<Class>_c2f / MPI_<Class>_f2c (handle_f2c.cpp). ferry's Fortran bindings
// (mpi/fortran/) convert every handle argument through these and release the integers of
// objects they free, so a slot can be reused as in Open MPI.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// The handle classes that have a Fortran integer (the values of ferry::mpi::Kind).
enum ferry_mpi_handle_class {
  FERRY_F_COMM = 1,
  FERRY_F_DATATYPE,
  FERRY_F_OP,
  FERRY_F_REQUEST,
  FERRY_F_GROUP,
  FERRY_F_ERRHANDLER,
  FERRY_F_MESSAGE,
  FERRY_F_WIN,
  FERRY_F_FILE,
  FERRY_F_INFO,
};

// The Fortran integer of a C handle (the same one each time; a new one for a handle not seen
// before); -1 for a null pointer.
int ferry_mpi_handle_c2f(int handle_class, const void *handle);
// The C handle of a Fortran integer; a null pointer for an integer that names no handle.
void *ferry_mpi_handle_f2c(int handle_class, int value);
// Frees the integer of an object the application freed (a completed request, a freed
// communicator...). Predefined handles keep their integers.
void ferry_mpi_handle_forget(int handle_class, int value);

#ifdef __cplusplus
}
#endif
