/* SPDX-License-Identifier: Apache-2.0
 * The Open MPI 4.1 C ABI that an unmodified `mpicc` binary expects, written from the facts in
 * shared/reference/openmpi-abi.md (never from Open MPI's mpi.h, which the upper half must not see).
 * Handles are pointers to opaque structs; predefined handles are the addresses of exported objects
 * whose sizes the application's copy relocations fix (kObjectSize below). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ompi_communicator_t *MPI_Comm;
typedef struct ompi_datatype_t *MPI_Datatype;
typedef struct ompi_errhandler_t *MPI_Errhandler;
typedef struct ompi_file_t *MPI_File;
typedef struct ompi_group_t *MPI_Group;
typedef struct ompi_info_t *MPI_Info;
typedef struct ompi_op_t *MPI_Op;
typedef struct ompi_request_t *MPI_Request;
typedef struct ompi_message_t *MPI_Message;
typedef struct ompi_win_t *MPI_Win;
typedef ptrdiff_t MPI_Aint;
typedef long long MPI_Offset;
typedef long long MPI_Count;
typedef int MPI_Fint;

/* sizeof == 24; MPI_SOURCE at 0, MPI_TAG at 4, MPI_ERROR at 8, _ucount (bytes) at 16. */
typedef struct ompi_status_public_t {
  int MPI_SOURCE;
  int MPI_TAG;
  int MPI_ERROR;
  int _cancelled;
  size_t _ucount;
} MPI_Status;

#define MPI_SUCCESS 0
#define MPI_ERR_BUFFER 1
#define MPI_ERR_COUNT 2
#define MPI_ERR_TYPE 3
#define MPI_ERR_TAG 4
#define MPI_ERR_COMM 5
#define MPI_ERR_RANK 6
#define MPI_ERR_REQUEST 7
#define MPI_ERR_ROOT 8
#define MPI_ERR_GROUP 9
#define MPI_ERR_OP 10
#define MPI_ERR_ARG 13
#define MPI_ERR_TRUNCATE 15
#define MPI_ERR_OTHER 16
#define MPI_ERR_INTERN 17

#define MPI_IN_PLACE ((void *)1)
#define MPI_BOTTOM ((void *)0)
#define MPI_STATUS_IGNORE ((MPI_Status *)0)
#define MPI_STATUSES_IGNORE ((MPI_Status *)0)
#define MPI_ANY_SOURCE (-1)
#define MPI_ANY_TAG (-1)
#define MPI_PROC_NULL (-2)
#define MPI_ROOT (-4)
#define MPI_UNDEFINED (-32766)
#define MPI_THREAD_SINGLE 0
#define MPI_THREAD_FUNNELED 1
#define MPI_THREAD_SERIALIZED 2
#define MPI_THREAD_MULTIPLE 3
#define MPI_MAX_PROCESSOR_NAME 256

/* Sizes of the exported objects (nm -DS libmpi.so.40); a replacement must match them exactly. */
#define FERRY_OMPI_COMM_OBJECT_SIZE 512
#define FERRY_OMPI_GROUP_OBJECT_SIZE 256
#define FERRY_OMPI_REQUEST_OBJECT_SIZE 256
#define FERRY_OMPI_MESSAGE_OBJECT_SIZE 256
#define FERRY_OMPI_OP_OBJECT_SIZE 2048
#define FERRY_OMPI_ERRHANDLER_OBJECT_SIZE 1024
#define FERRY_OMPI_WIN_OBJECT_SIZE 512
#define FERRY_OMPI_FILE_OBJECT_SIZE 1536
#define FERRY_OMPI_INFO_OBJECT_SIZE 256
#define FERRY_OMPI_DATATYPE_OBJECT_SIZE 512

#ifdef __cplusplus
}
#endif
